"""POS connectors shipped with Tessera, one package each (see pos_integration/base.py)."""
