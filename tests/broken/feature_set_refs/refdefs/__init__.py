"""Feature sets written the way a new user guesses: keys as a list, a misspelt feature, a
group by its name."""
