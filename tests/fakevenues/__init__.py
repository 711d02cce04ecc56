"""Local fakes of Binance spot and Upbit on 127.0.0.1 that the real ccxt client can trade on.

- ``engine``: ``Venue`` (markets, accounts, books, matching, ``faults``), ``Market``,
  ``EngineOrder``, ``Trade``, ``VenueError``; ``binance_venue()``, ``upbit_venue()``.
- ``market``: ``SyntheticMarket``, seeded books for both venues with an oscillating premium.
- ``binance``: the Binance REST/websocket routes, ``ccxt_urls(base_url)``.
- ``upbit``: the Upbit routes, ``ccxt_urls(base_url)``.
- ``server``: ``FakeVenues``, both on one server in a thread of its own; ``env()``.
- ``fixture``: the pytest fixture ``fake_venues``.
- ``python tests/fakevenues serve|run -- CMD``: the same outside pytest.

Nothing is imported here, so that ``import fakevenues`` costs nothing without aiohttp.
"""
