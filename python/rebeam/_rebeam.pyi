"""Private native module of rebeam: the connection to the governor. Use the `rebeam` API."""

from typing import Any, Literal
from collections.abc import Sequence

PROTOCOL_VERSION: int
LOCAL_DELIVERY: int  # the bit in a delivery id that marks it as a direct channel's, not the governor's
DEFAULT_MAX_MESSAGE_BYTES: int
MAX_QUEUE: int  # the most publications one subscription keeps (rebeam.on(queue=...))
MAX_BEHAVIOUR_CODES: int  # the most behaviour codes a run keeps (rebeam.boc._code)
MAX_THROTTLE: float  # the longest throttle of a subscription, in seconds
DEFAULT_QUEUE: int  # a subscription's bound when it names none
DEFAULT_CALL_TIMEOUT: float  # seconds `call` waits by default
DEFAULT_PUMP_WARN_MS: int  # main-side behaviours waiting this long unpumped get a warning
DEFAULT_STOP_TIMEOUT: float  # seconds `rebeam.stop()` waits for the governor
INTERNAL_ERROR_EXIT_STATUS: int  # a rebeam process's status after an internal error (EX_SOFTWARE)
DEFAULT_MAX_RESTARTS: int  # a supervisor's restart intensity: restarts ...
DEFAULT_MAX_SECONDS: float  # ... within this many seconds
DEFAULT_SHUTDOWN: float  # seconds a child gets to stop politely before it is killed
DEFAULT_RESTART: str  # a child's restart kind when it names none (one of RESTARTS)
ANY_NODE: str  # a child's node= for "any node up" (no node can have this name)
STRATEGIES: tuple[str, ...]  # supervision strategies, as spelled on the wire
RESTARTS: tuple[str, ...]  # restart kinds, as spelled on the wire
BALANCES: tuple[str, ...]  # how a group's name picks a member, as spelled on the wire
ENV_VARS: tuple[str, ...]  # the REBEAM_* variables both languages name (rebeam-proto's env)
ERROR_KINDS: tuple[ErrorKind, ...]  # every error kind, in rebeam-proto's order
MAX_RESTARTS: int  # the most restarts a Supervisor's intensity may allow (max_restarts=...)
MAX_RESTART_WINDOW: float  # the longest restart window, in seconds (max_seconds=...)

ErrorKind = Literal[
    "no_process",
    "actor_down",
    "crashed",
    "timeout",
    "too_large",
    "start_failed",
    "bad_request",
    "shutting_down",
    "no_mailbox",
    "safety",
    "reserved",
    "full",
    "no_queue",
]
# A crash as a Down notice's reason carries it: (kind, message, exc_type, traceback).
ErrorTuple = tuple[ErrorKind, str, str | None, str | None]

class ErrorInfo:
    """A failure Python reports to the governor; a kind not in ERROR_KINDS is a ValueError."""

    kind: ErrorKind
    message: str
    exc_type: str | None
    traceback: str | None
    def __init__(
        self, kind: ErrorKind, message: str, exc_type: str | None = None, traceback: str | None = None
    ) -> None: ...

class Exit:
    """How an actor ended, as a worker reports it; built by its constructors only."""

    kind: Literal["normal", "shutdown", "crashed"]  # what an actor's terminate(reason) is given
    @staticmethod
    def normal() -> Exit: ...
    @staticmethod
    def shutdown() -> Exit: ...
    @staticmethod
    def crashed(error: ErrorInfo) -> Exit: ...

class SharedBytes:
    """Bytes received from another process, as a read-only buffer (memoryview, NumPy, pickle)."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

class SharedBuffer:
    """Shared memory a call or cast lends with no copy (`rebeam.shared_array`), as a writable
    buffer. Read-only on the receiving side; its holder must not write it while a receiver may
    still read it (the receiver sees the same memory)."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

Buffers = Sequence[Any]  # objects supporting the buffer protocol (PickleBuffer, bytes, ...)
Target = str | int | Any  # a name, an actor id, or an object with an integer `.id`
# A call's answer: ("ok" | "error", data, buffers), or ("failed", exception) when the call failed.
CallAnswer = tuple[str, bytes, list[bytearray]] | tuple[str, BaseException]

def _control_frame(action: str) -> bytes: ...

VALUE_TAG: bytes  # what a Rust host's neutral-value payload opens with (a pickle never does)
HANDLE_KEY: str  # the one key of the map that stands for an opaque handle (rebeam.handles)
HANDLE_RELEASE: str  # the subject of a host's cast that releases a handle

def value_loads(data: bytes, buffers: list) -> Any:
    """A Rust host's neutral value as Python objects (dicts, lists, NumPy arrays)."""

def value_dumps(obj: Any) -> tuple[bytes, list[bytes]]:
    """``obj`` as a neutral value for a Rust host; TypeError names what cannot cross, and where."""

def value_dumps_exact(obj: Any) -> tuple[bytes, list[bytes]] | None:
    """``obj`` as a neutral value if that carries it with its exact types (a Python receiver
    gets what a pickle would give), else None."""

NOT_PLAIN: object  # cast_message's answer for a payload that goes through Worker.deliver

def cast_message(data: Any) -> Any:
    """``pickle.loads(data)`` for a plain cast payload (bytes, not a Rust host's value, naming
    no script module), small values decoded natively; ``NOT_PLAIN`` for any other payload."""

def plain_dumps(obj: Any) -> bytes:
    """``pickle.dumps(obj, 5)``, byte for byte; written natively for a small value of exactly
    type None, bool, int, float, str or bytes."""

def plain_decode(data: bytes) -> Any:
    """The value of a pickle the native decoder reads itself; ValueError for one it leaves to
    ``pickle.loads`` (for tests)."""

def check_strategy(value: str) -> str: ...  # ValueError unless one of STRATEGIES
def check_restart(value: str) -> str: ...  # ValueError unless one of RESTARTS
def check_balance(value: str) -> str: ...  # ValueError unless one of BALANCES

# The governor's commands, as `Connection.next_command()` returns them (one frozen class per
# command; rebeam/_dispatch.py maps each to its handler). Payloads are (data, buffers) pairs.
ActorRef = tuple[int, str | None]  # (actor id, registered name)

class Deliver:
    delivery: int | None  # None for a cast
    actor: int
    subject: str
    sender: ActorRef | None
    data: bytes
    buffers: list[bytearray]

class Start:
    actor: int
    name: str | None
    label: str
    kind: Literal["actor", "task", "script"]
    data: bytes | str  # the script's path for a script
    buffers: list[bytearray]
    class_name: str

class Stop:
    actor: int

class Preload: ...

class Down:
    monitor: int
    watcher: int | None
    actor: ActorRef
    reason: tuple[str, Any]  # ("normal" | "shutdown", None), ("crashed", ErrorTuple), ("killed", why)

class Shutdown:
    code: int  # -1: the connection to the governor was lost

class Surrender:
    cown: int

class RunBehaviour:
    behaviour: int
    cowns: list[int]
    result: int
    values: list[tuple[int, bytes, list[bytearray]]]
    lost: list[int]
    code: bytes
    code_buffers: list[bytearray]
    refused: BaseException | None
    gated: bool  # a disarm may cancel it (CancelBehaviour): only then is it admitted
    job: tuple[Any, ...]  # rebeam.boc._cowns.run_behaviour's arguments after the connection

class CancelBehaviour:
    behaviour: int

class ForgetCowns:
    cowns: list[int]

class Cancel:
    actor: int
    delivery: int

class SysPath:
    paths: list[str]

class DefineCode:
    id: int
    data: bytes
    buffers: list[bytearray]

class Publication:
    subscription: int
    actor: int | None
    topic: str
    data: bytes
    buffers: list[bytearray]
    dropped: int

Command = (
    Deliver | Start | Stop | Preload | Down | Shutdown | Surrender | RunBehaviour | CancelBehaviour | Cancel
    | SysPath | DefineCode | Publication
)

# A run of casts to one actor, as `Connection.next_commands()` batches them: each item is
# ("msg", None, subject, sender, data, buffers), the form the actor's mailbox holds.
MailboxItem = tuple[str, None, str, ActorRef | None, bytes, list[bytearray] | tuple[()]]

class Casts:
    actor: int
    items: list[MailboxItem]

class Connection:
    index: int
    max_message_bytes: int
    workers: int
    closed: bool
    commands_received: int
    casts_dropped: int

    @staticmethod
    def connect(socket: str, token: str, role: str) -> Connection: ...
    def ready(self) -> None: ...
    def call(
        self, target: Target, subject: str, data: bytes, buffers: Buffers, sender: int | None, timeout: float
    ) -> CallAnswer: ...
    def cast(self, target: Target, subject: str, data: bytes, buffers: Buffers, sender: int | None) -> bool: ...
    # Calls and casts without a waiting thread: each tag gets one answer from next_completion,
    # what call()/cast() would return (a call's tuple, a cast's bool) or the exception they'd raise.
    def call_start(
        self, target: Target, subject: str, data: bytes, buffers: Buffers, sender: int | None, timeout: float
    ) -> int: ...
    def cast_start(self, target: Target, subject: str, data: bytes, buffers: Buffers, sender: int | None) -> int: ...
    def next_completion(self, timeout: float | None = None) -> tuple[int, CallAnswer | bool | BaseException] | None: ...
    def forget(self, tag: int) -> bool: ...
    def spawn(self, child: dict[str, Any]) -> tuple[int, str | None]: ...
    def start_tree(self, spec: dict[str, Any]) -> int: ...
    def stop_tree(self, tree: int) -> None: ...
    def whereis(self, name: str) -> tuple[int, str | None] | None: ...
    def members(self, name: str) -> list[int | None] | None: ...
    def monitor(self, watcher: int | None, target: Target) -> int: ...
    def demonitor(self, monitor: int) -> None: ...
    def shutdown(self, code: int) -> None: ...
    def next_command(self, timeout: float | None = None) -> Command | None: ...
    def next_commands(self, timeout: float | None = None) -> list[Command | Casts]: ...
    def reply(self, delivery: int, ok: bool, data: bytes, buffers: Buffers) -> None: ...
    def reply_failure(self, delivery: int, info: ErrorInfo) -> None: ...
    def started(
        self, actor: int, error: ErrorInfo | None = None, gating: tuple[list[str], list[str], bool] | None = None
    ) -> None: ...
    def exited(self, actor: int, exit: Exit, taken_up_to: int | None = None) -> None: ...
    def took(self, delivery: int) -> None: ...
    def count_handled(self) -> None: ...
    def read_rings_when_idle(self) -> None: ...
    def handled(self, n: int = 1) -> None: ...
    def backlog(self) -> int: ...
    def step_aside(self) -> None: ...
    def resume(self) -> bool: ...
    def standby(self, timeout: float | None = None) -> bool: ...
    def body_done(self, error: ErrorInfo | None = None, exit: int | None = None) -> None: ...
    def safety_state(self) -> str: ...
    def subscribe(self, actor: int | None, pattern: str, throttle_ms: int, queue: int) -> int: ...
    def unsubscribe(self, subscription: int) -> None: ...
    def publish(self, topic: str, data: bytes, buffers: Buffers) -> None: ...
    def _send_raw(self, bytes: bytes) -> None: ...
    # `nbytes` of shared memory, lent with no copy (rebeam.shared_array); MemoryError at the bound.
    def shared_buffer(self, nbytes: int) -> SharedBuffer: ...
    # Behaviour-oriented concurrency (rebeam.boc).
    def cown_created(self, cown: int, pinned: bool) -> None: ...
    def drop_cowns(self, cowns: list[int], held: bool = False) -> None: ...
    def cown_value(self, cown: int, data: bytes, buffers: Buffers) -> None: ...
    def behaviour_done(self, behaviour: int, held: bool = False, wake: bool = True) -> None: ...
    def flush_held(self) -> None: ...
    def stop_flusher(self) -> None: ...
    def release_cowns(self, cowns: list[int], held: bool = False) -> None: ...
    def keep_cowns(self, cowns: list[int], held: bool = False) -> None: ...
    def sys_path(self, paths: list[str]) -> None: ...
    def define_code(self, id: int, data: bytes, buffers: Buffers) -> None: ...
    def schedule(
        self, behaviour: int, cowns: list[int], result: int, data: bytes, buffers: Buffers,
        at_main: bool = False, gated: bool = False, wait: bool = True,
    ) -> None: ...
    def schedule_one(self, behaviour: int, cown: int, result: int, data: bytes) -> None: ...
    def raise_refused(self) -> None: ...
    def quiesce(self, timeout: float | None) -> bool: ...
    def boc_stats(self) -> list[tuple[int, int, int]]: ...
    def nodes(self) -> list[str]: ...
    def send_tagged(self, tag: str, data: bytes, buffers: Buffers) -> None: ...
    def receive(self, tags: list[str], timeout: float | None) -> tuple[str, bytes, list[bytes]] | None: ...
    def drain(self, tags: list[str]) -> None: ...
    def set_tags(self, tags: list[str]) -> None: ...
    def notice(self, key: str, data: bytes | None, buffers: Buffers) -> None: ...
    def notice_seed(self, key: str, data: bytes, buffers: Buffers) -> None: ...
    def notice_update(self, key: str, expected: int, data: bytes | None, buffers: Buffers) -> bool: ...
    def notices(self, clear: bool) -> list[tuple[str, int, bytes, list[bytes]]]: ...
