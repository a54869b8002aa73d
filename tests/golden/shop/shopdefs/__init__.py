"""A small web shop: the fixed definition set the golden files pin."""
