"""One item where the API takes a list: a group's sources, an aggregation's windows, an
on-demand feature's source groups."""
