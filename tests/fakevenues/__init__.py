"""Local fakes of Binance spot and Upbit on 127.0.0.1 that the real ccxt client can trade on."""
