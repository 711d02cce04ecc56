"""Built-in arbframe plugins, registered through the `arbframe` entry-point group."""
