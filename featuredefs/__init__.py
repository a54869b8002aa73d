"""Feature definitions of the example project: a card-fraud model over customers and
merchants. Each feature is declared once here; every generated path imports these functions."""
