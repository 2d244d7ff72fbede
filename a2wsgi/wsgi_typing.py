"""Type names for WSGI applications, written from PEP 3333. Only used for annotations."""

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Protocol, Tuple, Type, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
elif TYPE_CHECKING:  # type checkers only: never imported at run time
    from typing_extensions import NotRequired
else:  # pragma: no cover - older Pythons see these keys as plain Optional
    NotRequired = Optional

__all__ = (
    "CGIRequiredDefined", "CGIOptionalDefined", "WSGIDefined", "Environ", "InputStream",
    "ErrorStream", "ExceptionInfo", "WriteCallable", "StartResponse", "IterableChunks", "WSGIApp",
)

# PEP 3333, "environ Variables": the CGI keys a server must provide.
CGIRequiredDefined = TypedDict(
    "CGIRequiredDefined",
    {
        "REQUEST_METHOD": str,
        "SCRIPT_NAME": str,
        "PATH_INFO": str,
        "SERVER_NAME": str,
        "SERVER_PORT": str,
        "SERVER_PROTOCOL": str,
    },
)

# The CGI keys that may be absent or empty.
CGIOptionalDefined = TypedDict(
    "CGIOptionalDefined",
    {
        "QUERY_STRING": NotRequired[str],
        "CONTENT_TYPE": NotRequired[str],
        "CONTENT_LENGTH": NotRequired[str],
        "REMOTE_ADDR": NotRequired[str],
        "REMOTE_PORT": NotRequired[str],
        "REMOTE_HOST": NotRequired[str],
        "REMOTE_USER": NotRequired[str],
        "AUTH_TYPE": NotRequired[str],
        "REQUEST_URI": NotRequired[str],
        "GATEWAY_INTERFACE": NotRequired[str],
    },
    total=False,
)


class InputStream(Protocol):
    """``wsgi.input``: PEP 3333, "Input and Error Streams"."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, limit: int = -1, /) -> bytes: ...

    def readlines(self, hint: int = -1, /) -> List[bytes]: ...

    def __iter__(self) -> Iterable[bytes]: ...


class ErrorStream(Protocol):
    """``wsgi.errors``: a text stream."""

    def flush(self) -> None: ...

    def write(self, s: str, /) -> Any: ...

    def writelines(self, seq: List[str], /) -> Any: ...


# PEP 3333: the wsgi.* keys.
WSGIDefined = TypedDict(
    "WSGIDefined",
    {
        "wsgi.version": Tuple[int, int],
        "wsgi.url_scheme": str,
        "wsgi.input": InputStream,
        "wsgi.errors": ErrorStream,
        "wsgi.multithread": bool,
        "wsgi.multiprocess": bool,
        "wsgi.run_once": bool,
    },
)


class Environ(CGIRequiredDefined, CGIOptionalDefined, WSGIDefined):
    """The WSGI environ: CGI keys, ``wsgi.*`` keys and ``HTTP_*`` keys (the last are not typed)."""


ExceptionInfo = Tuple[Type[BaseException], BaseException, Optional[TracebackType]]

WriteCallable = Callable[[bytes], None]


class StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        response_headers: List[Tuple[str, str]],
        exc_info: Optional[ExceptionInfo] = None,
        /,
    ) -> WriteCallable: ...


IterableChunks = Iterable[bytes]

WSGIApp = Callable[[Environ, StartResponse], IterableChunks]

