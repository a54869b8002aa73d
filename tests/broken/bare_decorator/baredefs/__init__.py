"""A feature decorator used without its arguments, in a module another module imports."""
