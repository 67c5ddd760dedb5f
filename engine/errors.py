"""One exception type for every failure a client should hear about.

`code` is the machine-readable word sent in `/segue/error id code message`;
the list of codes is the public contract in docs/protocol.md.
"""


class SegueError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Cancelled(SegueError):
    def __init__(self, message: str = "request was cancelled"):
        super().__init__("cancelled", message)


class TimedOut(SegueError):
    def __init__(self, message: str = "request ran past its time limit"):
        super().__init__("timeout", message)
