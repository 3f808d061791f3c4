"""Business errors that cross RPC boundaries.

nameko serialises an exception raised in an ``@rpc`` method as ``exc_type`` (the class
name) and ``exc_args``.  Every error here is constructed as ``(message, details)`` so a
caller (the gateway) can turn it into the HTTP error of api.md without knowing the
service: ``exc_type`` picks the status, ``exc_args[0]`` is the message and
``exc_args[1]`` the details (for 422 a mapping of field name to messages).
"""


class CrmError(Exception):
    """Base of the errors a service raises on purpose (never a bug)."""

    http_status = 400
    code = "bad_request"

    def __init__(self, message, details=None):
        super().__init__(message, details or {})

    @classmethod
    def from_args(cls, message, details=None):
        """Rebuild an error from the ``exc_args`` it travelled as."""
        error = cls.__new__(cls)
        CrmError.__init__(error, message, details)
        return error

    @property
    def message(self):
        return self.args[0]

    @property
    def details(self):
        return self.args[1]


class NotFound(CrmError):
    http_status = 404
    code = "not_found"


class Conflict(CrmError):
    """The request is valid but clashes with the current state (duplicate, wrong state)."""

    http_status = 409
    code = "conflict"


class InvalidInput(CrmError):
    """Well-formed request with invalid values; ``details`` names each field."""

    http_status = 422
    code = "validation_error"

    def __init__(self, details, message="Some fields are invalid."):
        super().__init__(message, details)


class Unavailable(CrmError):
    """A service this one depends on is down or too slow: try again later."""

    http_status = 503
    code = "service_unavailable"


#: every error class by name, for callers that receive only ``exc_type``
BY_NAME = {cls.__name__: cls for cls in (CrmError, NotFound, Conflict, InvalidInput,
                                          Unavailable)}

#: the tuple to pass as ``expected_exceptions`` to ``@rpc`` so these are not logged as failures
EXPECTED = tuple(BY_NAME.values())


def _register_with_nameko():
    """Let nameko's RPC proxies raise these classes themselves (not a generic RemoteError)."""
    try:
        from nameko.exceptions import registry
    except ImportError:  # a caller without nameko (the gateway uses its own client)
        return
    for cls in BY_NAME.values():
        registry[f"{cls.__module__}.{cls.__name__}"] = cls.from_args


_register_with_nameko()
