class InputError(Exception):
    """Bad input from the user: the message is one line naming the file and the problem."""
