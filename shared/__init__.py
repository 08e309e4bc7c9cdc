"""The library the exchange-processor functions share: settings, errors, models, Graph, ops."""
