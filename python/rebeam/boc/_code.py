"""Behaviour code sent once: each ``@when`` carries only its captures and cown ids.

The main process keeps a *template* per behaviour site: the function without its defaults
and closure values, pickled once as ``_runtime.dumps_code`` pickles code (cloudpickle, with
the logging configuration) and defined under an id for every worker (``define_code``: the
governor passes it on to each worker, and to every worker that starts later, before any
behaviour that names it). A behaviour then sends ``(id, groups, captures, defaults,
kwdefaults, cells)`` with plain pickle (cloudpickle only for a value that needs it), and the
process that runs it rebuilds the function from the template with those values.

The rules, so that a behaviour sees what it saw when its code travelled whole each time:

- A template stands for what cloudpickle would capture of the function: its code object, the
  logging configuration's generation, and every global its code names, by identity. Only
  globals that cannot change under it qualify (numbers, strings, modules, classes and
  functions); a function naming a list, a dict or any other object travels whole, as before,
  and so does one with attributes, one that pickles by reference (a module's own function: the
  worker has it), one with an empty closure cell, and any function made in a worker.
- A worker keeps a template as the bytes that came, and unpickles it on first use; if that
  fails, the behaviour fails as it would have, and the next one tries again.
- At most ``MAX_BEHAVIOUR_CODES`` templates per run (one per ``@when`` site in a program;
  more only for code made in a loop): past that, code travels whole.
- A behaviour that carries nothing but its cowns (no captures, defaults, keyword defaults or
  closure: the common shape) is pickled on a short path: its tuple holds only ints and lists
  of ints, so there is no buffer to collect and nothing that needs cloudpickle.
- A worker keeps what such a short-path behaviour decoded to, by the bytes that came (a
  template id and cown ids: the same bytes each time a site runs on the same cowns), for at
  most ``DECODED_MAX`` distinct ones: the function rebuilt from the template, and the groups
  (ints and lists of ints that nothing changes). A function with no defaults, keyword
  defaults or closure carries nothing a run could change for the next, so sharing it is not
  seen. Any other behaviour is decoded anew.
"""

from __future__ import annotations

import pickle
import threading
import types
from typing import Any
from collections.abc import Callable

from .. import _logsync, _rebeam, _runtime

#: In the main process: template id by key, and the template functions by id. In a worker:
#: by id, ``(data, buffers)`` as defined, replaced by the function on first use.
_ids: dict[tuple, int] = {}
_codes: dict[int, Any] = {}
#: The global names a code object (and the code nested in it) refers to, by the code's id,
#: with the code itself (kept alive here, so its id is never another code's). By id, since
#: hashing a code object hashes its constants, at every @when.
_names: dict[int, tuple[types.CodeType, tuple]] = {}
_lock = threading.Lock()

_STABLE = (type(None), bool, int, float, complex, str, bytes, types.ModuleType, types.FunctionType,
           types.BuiltinFunctionType)  # fmt: skip


def _global_names(code: types.CodeType) -> tuple:
    entry = _names.get(id(code))
    if entry is not None and entry[0] is code:
        return entry[1]
    found, todo = set(), [code]
    while todo:
        c = todo.pop()
        found.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    names = tuple(sorted(found))
    _names[id(code)] = (code, names)
    return names


def _key(func: types.FunctionType, config: Any) -> tuple | None:
    """What the template of ``func`` stands for, or None when ``func`` must travel whole."""
    g = func.__globals__
    held = []
    for name in _global_names(func.__code__):
        v = g.get(name, _key)
        if v is _key:
            continue  # an attribute name, a builtin, or not bound yet: nothing captured
        if not (type(v) in _STABLE or isinstance(v, type)):
            return None
        held.append(id(v))
    # The code by id: `_global_names` keeps it alive, so no other code ever has that id.
    return (id(func.__code__), config and config[0], tuple(held))


def _by_reference(func: types.FunctionType) -> bool:
    from .. import _codepickle

    if _codepickle._script_qualname(func) is not None:
        return True
    import cloudpickle.cloudpickle as cp

    check: Callable | None = getattr(cp, "_should_pickle_by_reference", None)
    return True if check is None else bool(check(func))


#: The template a code object last resolved to, by the code's id (kept alive by `_names`):
#: ``(code, logging generation, globals, names, ids of what each name is bound to, template
#: id)``. A `@when` site whose globals still bind the same objects skips `_key`.
_sites: dict[int, tuple] = {}


def _bound_ids(g: dict, names: tuple) -> tuple:
    # `_key` itself for a name not bound: a new binding of it changes the tuple too.
    return tuple([id(g.get(name, _key)) for name in names])


def _still_bound(g: dict, names: tuple, ids: tuple) -> bool:
    """Whether each of `names` is bound in `g` as `_bound_ids` saw it (a plain loop: this is
    every `@when`'s path)."""
    i = 0
    for name in names:
        if id(g.get(name, _key)) != ids[i]:
            return False
        i += 1
    return True


def _template_id(func: Any) -> int | None:
    """The id of ``func``'s template, defined now if it is new; None if it travels whole."""
    if type(func) is not types.FunctionType or func.__dict__ or _runtime.ROLE == "worker":
        return None
    config = _logsync.snapshot()
    code, g = func.__code__, func.__globals__
    site = _sites.get(id(code))
    generation = config and config[0]
    if site is not None and site[0] is code and site[1] == generation and site[2] is g:
        if _still_bound(g, site[3], site[4]):
            return site[5]
    key = _key(func, config)
    if key is None:
        return None
    found = _ids.get(key)
    if found is None:
        found = _define(func, key)
    if found is not None and len(_sites) < _rebeam.MAX_BEHAVIOUR_CODES:
        names = _global_names(code)
        _sites[id(code)] = (code, generation, g, names, _bound_ids(g, names), found)
    return found


def _define(func: types.FunctionType, key: tuple) -> int | None:
    with _lock:
        if key in _ids:
            return _ids[key]
        if len(_ids) >= _rebeam.MAX_BEHAVIOUR_CODES or _by_reference(func):
            return None
        cells = None if func.__closure__ is None else tuple(types.CellType() for _ in func.__closure__)
        template = types.FunctionType(func.__code__, func.__globals__, func.__name__, None, cells)
        template.__qualname__ = func.__qualname__
        try:
            data, buffers = _runtime.dumps_code(template, f"behaviour {func.__qualname__!r}")
        except Exception:
            return None  # it travels whole, and says why it cannot
        from ._cowns import new_id

        code_id = new_id()
        _runtime.connection().define_code(code_id, data, buffers)
        _codes[code_id] = template
        _ids[key] = code_id
        return code_id


#: The buffers of a behaviour pickled on the short path (see the module doc): none.
_NO_BUFFERS: tuple = ()

#: What a short-path behaviour on one cown pickled to, by template id and cown (the same bytes
#: each time: they hold only those two ints), for at most ``DECODED_MAX`` distinct ones.
_packed: dict[tuple, bytes] = {}


def pack(func: Any, groups: list, captures: list) -> tuple[bytes, Any] | None:
    """A behaviour's code as its captures and a template id; None when it must travel whole."""
    code_id = _template_id(func)
    if code_id is None:
        return None
    if not captures and func.__closure__ is None and func.__defaults__ is None and func.__kwdefaults__ is None:
        _runtime.share_sys_path()  # as `_runtime.dumps` does: workers import as this process does
        if len(groups) != 1 or type(groups[0]) is not int:
            return pickle.dumps((code_id, groups, captures, None, None, None), 5), _NO_BUFFERS
        key = (code_id, groups[0])
        data = _packed.get(key)
        if data is None:
            data = pickle.dumps((code_id, groups, captures, None, None, None), 5)
            if len(_packed) >= DECODED_MAX:
                _packed.clear()
            _packed[key] = data
        return data, _NO_BUFFERS
    try:
        cells = None if func.__closure__ is None else tuple(c.cell_contents for c in func.__closure__)
    except ValueError:
        return None  # an empty cell: cloudpickle knows how to send one
    sent = (code_id, groups, captures, func.__defaults__, func.__kwdefaults__, cells)
    try:
        # No name in `what`: a failure here is never shown (the code then travels whole, and
        # that path names the behaviour).
        return _runtime.dumps(sent, "a behaviour")
    except Exception:
        return None


#: Short-path behaviours decoded, by the bytes that came (see the module doc). Past this many
#: distinct ones (a site run over many cowns), it starts again empty.
DECODED_MAX = 4096
_decoded: dict[bytes, tuple] = {}


def decode(code: bytes) -> tuple:
    """``(fn, groups, captures)`` for a behaviour's plain-pickle ``code`` (no buffers, nothing
    from the script). A short-path one is kept whole: its function is the template's code with
    no defaults, closure or attributes a behaviour could tell apart from a fresh one, so one
    function per site serves every run (no function object made per behaviour)."""
    unpacked = _decoded.get(code)
    if unpacked is None:
        sent = pickle.loads(code)
        unpacked = unpack(sent)
        if type(sent[0]) is int and not sent[2] and sent[3] is None and sent[4] is None and sent[5] is None:
            if len(_decoded) >= DECODED_MAX:
                _decoded.clear()
            _decoded[code] = unpacked
    return unpacked


def define(code_id: int, data: bytes, buffers: list) -> None:
    """The main process defined a template (in a worker)."""
    _codes[code_id] = (data, buffers)


def unpack(sent: tuple) -> tuple:
    """``(fn, groups, captures)`` from what a behaviour carried: whole code, or a template's id."""
    if type(sent[0]) is not int:
        return sent
    code_id, groups, captures, defaults, kwdefaults, cells = sent
    template = _codes.get(code_id)
    if template is None:
        raise RuntimeError(f"rebeam: the code of this behaviour (id {code_id}) never reached this process")
    if isinstance(template, tuple):
        template = _runtime.loads(*template)
        _codes[code_id] = template
    closure = None if cells is None else tuple(types.CellType(v) for v in cells)
    fn = types.FunctionType(template.__code__, template.__globals__, template.__name__, defaults, closure)
    fn.__qualname__, fn.__kwdefaults__ = template.__qualname__, kwdefaults
    return fn, groups, captures
