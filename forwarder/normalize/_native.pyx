# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled shape builder: ``program.py``'s shape programs as one C interpreter, for speed.

A ``Builder`` is set up once per (family, payload key sequence) from the same inputs ``program.py``
generates Python from (the family's table, picks, hooks and id keys): every field's position, converter
and target section are resolved into C arrays then, so a record costs its unpacking, type checks in C,
the converters' caches read in C and the containers of its document. Anything off the common path (a
value of another type, a converter that refuses, an envelope to sanitise) sends the record to
``normalize_doc`` whole, as the Python program does: the results are the reference's, byte for byte
(``tests/unit/test_normalize_native.py``). Built when a C compiler is there; else ``program.py`` runs.
"""

from cpython.ref cimport PyObject
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import orjson
from xxhash import xxh3_128_hexdigest

from forwarder.events import ECS_VERSION
from forwarder.normalize import codes
from forwarder.normalize import hooks as hook_rules
from forwarder.normalize.engine import _SKIP, _related, envelope_fields, hooks_for, id_prefix, snake
from forwarder.normalize.families import _ms_to_ns, _str_or_none
from forwarder.normalize.values import as_int, as_str, iso_text

cdef extern from "Python.h":
    int Dset "PyDict_SetItem"(object d, object k, PyObject* v) except -1
    PyObject* Dget "PyDict_GetItem"(object d, PyObject* k)  # borrowed; NULL when absent, never raises
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** k, PyObject** v)
    Py_ssize_t PyDict_GET_SIZE(object d)
    bint PyDict_CheckExact(PyObject* o)
    bint PyUnicode_CheckExact(PyObject* o)
    bint PyLong_CheckExact(PyObject* o)
    bint PyFloat_CheckExact(PyObject* o)
    bint PyBool_Check(PyObject* o)
    bint PyList_CheckExact(PyObject* o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject* o)
    bint PyUnicode_IS_ASCII(PyObject* o)
    unsigned char* PyUnicode_1BYTE_DATA(PyObject* o)
    double PyFloat_AS_DOUBLE(PyObject* o)
    long long PyLong_AsLongLongAndOverflow(PyObject* o, int* overflow) except? -1
    object PyLong_FromLongLong(long long v)
    object PyUnicode_New(Py_ssize_t size, unsigned int maxchar)
    dict _PyDict_NewPresized(Py_ssize_t size)
    PyObject* PyTuple_GET_ITEM(object t, Py_ssize_t i)
    int PyObject_RichCompareBool(PyObject* a, PyObject* b, int op) except -1
    enum: Py_EQ

cdef extern from "math.h":
    bint isfinite(double x)

cdef extern from *:
    """
    /* "YYYY-MM-DDTHH:MM:SSZ" -> "YYYY-MM-DDTHH:MM:SS.000Z" (iso_text's rewrite of the object form) */
    static void sf_copy_iso20(PyObject* out, PyObject* v) {
        unsigned char* d = PyUnicode_1BYTE_DATA(out);
        memcpy(d, PyUnicode_1BYTE_DATA(v), 19);
        memcpy(d + 19, ".000Z", 5);
    }
    """
    void sf_copy_iso20(object out, PyObject* v)


class Unsupported(Exception):
    """A shape this builder does not take (``program.py`` builds it instead)."""


cdef PyObject* NONE = <PyObject*>None

# Limits of the fixed arrays below; a family or shape beyond them raises Unsupported.
cdef enum:
    MAX_KEYS = 512
    MAX_SLOTS = 16
    MAX_PICKS = 8
    MAX_CHOICES = 4
    MAX_HOOKS = 12
    MAX_IDS = 4

# How a value is converted: the converters the C code knows, or CALL for any other.
cdef enum Conv:
    C_UNMAPPED, C_RAW, C_TEXT, C_INT, C_CACHED, C_ISO, C_MS_TO_NS, C_TEXT_OR_CALL, C_CALL

# The hooks whose common case runs in C (``program._INLINE``); H_CALL calls the hook.
cdef enum Hook:
    H_CALL, H_TLS, H_STATUS, H_GEO, H_LOGIN_TYPE

ctypedef struct Op:
    int index        # position in the payload
    int conv
    int slot         # section receiving the value
    PyObject* leaf   # key in that section
    PyObject* fn     # the converter, or NULL
    PyObject* cache  # a memoised converter's cache dict (``values._cached``), or NULL

cdef str K_TS = "@timestamp", K_EVENT = "event", K_SF = "salesforce", K_ID = "id", K_NAME = "name"
cdef str K_IP = "ip", K_USER = "user", K_SOURCE = "source", K_TARGET = "target", K_EFFECTIVE = "effective"
cdef str K_RELATED_IP = "_related_ip", K_RELATED = "related", K_ECS = "ecs", K_VERSION = "version"
cdef str K_RAW = "raw", K_INGESTED = "ingested", K_OUTCOME = "outcome", K_REASON = "reason"
cdef str K_TLS = "tls", K_PROTOCOL = "version_protocol", K_GEO = "geo", K_LOCATION = "location"
cdef str K_LAT = "lat", K_LON = "lon", K_LOGIN_TYPE = "login_type", K_LOGIN_TYPE_CODE = "login_type_code"
cdef str K_CATEGORY = "category", K_TYPE = "type", SUCCESS = "success", FAILURE = "failure"
cdef object ECS = ECS_VERSION
cdef dict LOGIN_TYPES = codes.LOGIN_TYPES
cdef object dumps = orjson.dumps, content_hash = xxh3_128_hexdigest, tls_version = hook_rules._tls_cached
cdef dict TLS_MEMO = {}  # TLS text -> tls_version's (pure) answer; bounded below


cdef inline int two_digits(const unsigned char* s, int i) noexcept:
    cdef int a = s[i] - 48, b = s[i + 1] - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b

cdef int MONTH_DAYS[13]
MONTH_DAYS[:] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

cdef inline bint iso_form(PyObject* v, Py_ssize_t size) noexcept:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (size 24) or ``YYYY-MM-DDTHH:MM:SSZ`` (size 20), ASCII, a real date:
    only text ``iso_text`` returns unchanged (24) or with ``.000`` (20). Anything else: ``iso_text``."""
    cdef const unsigned char* s
    cdef int year, month, day
    if PyUnicode_GET_LENGTH(v) != size or not PyUnicode_IS_ASCII(v):
        return 0
    s = PyUnicode_1BYTE_DATA(v)
    if s[4] != 45 or s[7] != 45 or s[10] != 84 or s[13] != 58 or s[16] != 58 or s[size - 1] != 90:
        return 0
    year = two_digits(s, 0) * 100 + two_digits(s, 2)
    month = two_digits(s, 5)
    day = two_digits(s, 8)
    if two_digits(s, 0) < 0 or two_digits(s, 2) < 0 or year < 1 or month < 1 or month > 12 or day < 1:
        return 0
    if day > MONTH_DAYS[month] or (month == 2 and day == 29 and not (
            year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))):
        return 0
    if not (0 <= two_digits(s, 11) <= 23 and 0 <= two_digits(s, 14) <= 59 and 0 <= two_digits(s, 17) <= 59):
        return 0
    if size == 24 and (s[19] != 46 or two_digits(s, 20) < 0 or not 48 <= s[22] <= 57):
        return 0
    return 1


cdef inline object iso(PyObject* v, object fn):
    cdef object out
    if PyUnicode_CheckExact(v):
        if iso_form(v, 24):
            return <object>v
        if iso_form(v, 20):
            out = PyUnicode_New(24, 127)
            sf_copy_iso20(out, v)
            return out
    return fn(<object>v)


cdef inline bint plain_envelope(object envelope) except -1:
    """``engine.envelope_fields``' test in C: every key text, every value non-empty ASCII text or an int
    in 64 bits (the envelope is then used as it is); otherwise that function decides."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* k
    cdef PyObject* v
    cdef int overflow = 0
    if not PyDict_CheckExact(<PyObject*>envelope):
        return 0
    while PyDict_Next(envelope, &pos, &k, &v):
        if not PyUnicode_CheckExact(k):
            return 0
        if PyUnicode_CheckExact(v):
            if PyUnicode_GET_LENGTH(v) == 0 or not PyUnicode_IS_ASCII(v):
                return 0
        elif PyLong_CheckExact(v):
            PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow:
                return 0
        else:
            return 0
    return 1


cdef int conv_kind(object fn):
    if fn is None:
        return C_RAW
    if fn is as_str:
        return C_TEXT
    if fn is as_int:
        return C_INT
    if fn is _str_or_none:
        return C_TEXT_OR_CALL
    if fn is iso_text:
        return C_ISO
    if fn is _ms_to_ns:
        return C_MS_TO_NS
    if getattr(fn, "cache_get", None) is not None:
        return C_CACHED
    return C_CALL


cdef class Builder:
    """Builds every document of one (source, kind, raw mode, payload key sequence)."""
    cdef readonly str source, kind
    cdef tuple shape
    cdef bint raw
    cdef int size, nops, nslots, npicks, nhooks, nids, envelope_at
    cdef Op* ops
    cdef int slot_parent[MAX_SLOTS]
    cdef int slot_depth[MAX_SLOTS]
    cdef PyObject* slot_key[MAX_SLOTS]
    cdef int pick_slot[MAX_PICKS]
    cdef PyObject* pick_leaf[MAX_PICKS]
    cdef int pick_size[MAX_PICKS]
    cdef Op pick_choice[MAX_PICKS][MAX_CHOICES]
    cdef int hook_kind[MAX_HOOKS]
    cdef PyObject* hook_fn[MAX_HOOKS]
    cdef int hook_a[MAX_HOOKS]
    cdef int hook_b[MAX_HOOKS]
    cdef PyObject* hook_text[MAX_HOOKS]
    cdef int id_index[MAX_IDS]
    cdef int* sorted_index
    cdef bytes prefix
    cdef dict event_template
    cdef Py_ssize_t doc_size, extra_size  # the largest document and salesforce.* built so far: no resizes
    cdef list keep  # owns every object the C arrays point to
    cdef object seen, checked  # the last envelope and its checked fields (a log file: one for all rows)

    def __cinit__(self):
        self.ops = NULL
        self.sorted_index = NULL

    def __dealloc__(self):
        free(self.ops)
        free(self.sorted_index)

    def __init__(self, family, str source, str kind, str provider, tuple shape, bint raw):
        cdef int i
        self.source, self.kind, self.shape, self.raw, self.size = source, kind, shape, raw, len(shape)
        if self.size > MAX_KEYS or any(key.__class__ is not str for key in shape):
            raise Unsupported("keys")
        try:
            self.prefix = id_prefix(kind) + dumps(sorted(shape))
        except TypeError:
            raise Unsupported("keys JSON cannot carry") from None
        self.keep = []
        position = {key: i for i, key in enumerate(shape)}
        slots = {(): 0, (K_EVENT,): 1, (K_SF,): 2}  # the document, event and salesforce exist from the start
        for i, key in enumerate((None, K_EVENT, K_SF)):
            self.slot_parent[i] = -1 if i == 0 else 0
            self.slot_depth[i] = 0 if i == 0 else 1
            self.slot_key[i] = self._own(key)

        def slot_of(parts):
            if parts not in slots:
                parent = slot_of(parts[:len(parts) - 1])
                if len(slots) >= MAX_SLOTS:
                    raise Unsupported("sections")
                s = slots[parts] = len(slots)
                self.slot_parent[s], self.slot_depth[s], self.slot_key[s] = parent, len(parts), self._own(parts[len(parts) - 1])
            return slots[parts]

        def target(depth, first, second, third):
            parts = (first, second, third)[:depth]
            if depth == 1 and first != K_TS:
                raise Unsupported("a top-level target besides @timestamp")
            return slot_of(parts[:depth - 1]), parts[depth - 1]

        ops = [(i, C_UNMAPPED, 2, snake(key), None) for i, key in enumerate(shape)
               if key not in family.table and key not in _SKIP]
        self.envelope_at = len(ops)  # the envelope's fields follow the unmapped ones, as in the reference
        for key, targets in family.table.items():
            if key in position:
                for depth, first, second, third, fn in targets:
                    ops.append((position[key], conv_kind(fn), *target(depth, first, second, third), fn))
        self.nops = len(ops)
        self.ops = <Op*>malloc(sizeof(Op) * max(1, self.nops))
        if self.ops == NULL:
            raise MemoryError
        for i, (index, conv, slot, leaf, fn) in enumerate(ops):
            self._set_op(&self.ops[i], index, conv, slot, leaf, fn)
        self.npicks = 0
        for (depth, first, second, third), choices in family.picks:
            choices = [(key, fn) for key, fn in choices if key in position]
            if not choices:
                continue
            if self.npicks >= MAX_PICKS or len(choices) > MAX_CHOICES:
                raise Unsupported("picks")
            slot, leaf = target(depth, first, second, third)
            self.pick_slot[self.npicks], self.pick_leaf[self.npicks] = slot, self._own(leaf)
            self.pick_size[self.npicks] = len(choices)
            for i, (key, fn) in enumerate(choices):
                self._set_op(&self.pick_choice[self.npicks][i], position[key], conv_kind(fn), slot, leaf, fn)
            self.npicks += 1
        self.nslots = len(slots)
        ids = [position[key] for key in family.id_keys if key in position]
        if len(ids) > MAX_IDS:
            raise Unsupported("id keys")
        self.nids = len(ids)
        for i, index in enumerate(ids):
            self.id_index[i] = index
        self.sorted_index = <int*>malloc(sizeof(int) * max(1, self.size))
        if self.sorted_index == NULL:
            raise MemoryError
        for i, key in enumerate(sorted(shape)):
            self.sorted_index[i] = position[key]
        self._set_hooks(hooks_for(family.finish, shape), position)
        # room for what the hooks and the pipeline add (outcome, reason, ingested...): copies keep it
        fields = {"id": "", "kind": family.kind, "category": list(family.category), "type": list(family.type),
                  "dataset": family.dataset, "provider": provider, "module": "salesforce", "severity": 0}
        if family.action is not None:
            fields["action"] = family.action
        event = _PyDict_NewPresized(16)
        for key, value in fields.items():  # one by one: update() would clone the literal's smaller table
            event[key] = value
        self.event_template = event
        self.doc_size, self.extra_size = 8, self.size
        self.seen = self.checked = None

    cdef PyObject* _own(self, obj) except? NULL:
        self.keep.append(obj)
        return <PyObject*>obj

    cdef int _set_op(self, Op* op, int index, int conv, int slot, leaf, fn) except -1:
        cache_get = getattr(fn, "cache_get", None)
        op.index, op.conv, op.slot = index, conv, slot
        op.leaf = self._own(leaf)
        op.fn = self._own(fn) if fn is not None else NULL
        op.cache = self._own(cache_get.__self__) if cache_get is not None else NULL
        return 0

    def _set_hooks(self, hooks, position):
        """``program._INLINE``'s rules: the common case of four hot hooks in C, the hook for the rest."""
        if len(hooks) > MAX_HOOKS:
            raise Unsupported("hooks")
        self.nhooks = len(hooks)
        for i, hook in enumerate(hooks):
            self.hook_kind[i], self.hook_fn[i] = H_CALL, self._own(hook)
            if hook is hook_rules.tls:
                present = [key for key in ("TLS_PROTOCOL", "TlsProtocol") if key in position]
                if len(present) == 1:
                    self.hook_kind[i], self.hook_a[i] = H_TLS, position[present[0]]
            elif hook is hook_rules.login_status:
                key, success = ("Status", "Success") if "Status" in position else ("LOGIN_STATUS", "LOGIN_NO_ERROR")
                if key in position:
                    self.hook_kind[i], self.hook_a[i], self.hook_text[i] = H_STATUS, position[key], self._own(success)
            elif hook is hook_rules.geo:
                if "LoginLatitude" in position and "LoginLongitude" in position:
                    self.hook_kind[i] = H_GEO
                    self.hook_a[i], self.hook_b[i] = position["LoginLatitude"], position["LoginLongitude"]
            elif hook is hook_rules.elf_login_type:
                if "LOGIN_TYPE" in position:
                    self.hook_kind[i], self.hook_a[i] = H_LOGIN_TYPE, position["LOGIN_TYPE"]

    cdef object convert(self, Op* op, PyObject* v):
        """``op``'s converter applied to ``v`` (its common cases in C); raises what the converter raises."""
        cdef int overflow = 0
        cdef long long number
        cdef PyObject* hit
        if op.conv == C_RAW:
            return <object>v
        if op.conv == C_TEXT or op.conv == C_TEXT_OR_CALL:
            if PyUnicode_CheckExact(v):
                return <object>v
        elif op.conv == C_INT:
            if PyLong_CheckExact(v):
                PyLong_AsLongLongAndOverflow(v, &overflow)
                if not overflow:
                    return <object>v
        elif op.conv == C_CACHED:
            if PyUnicode_CheckExact(v):
                hit = Dget(<object>op.cache, v)
                if hit != NULL and hit != NONE:
                    return <object>hit
        elif op.conv == C_ISO:
            return iso(v, <object>op.fn)
        elif op.conv == C_MS_TO_NS:
            if PyLong_CheckExact(v):
                number = PyLong_AsLongLongAndOverflow(v, &overflow)
                if not overflow and 0 <= number <= 9223372036854LL:
                    return PyLong_FromLongLong(number * 1000000)
        return (<object>op.fn)(<object>v)

    cdef object build(self, object record, object payload, PyObject** a, object ingested):
        """The document for ``payload``, whose values are ``a`` in shape order; None: the reference path."""
        cdef PyObject* section[MAX_SLOTS]
        cdef PyObject* v
        cdef int j, c, depth
        cdef Op* op
        cdef object w
        cdef dict doc, event, extra, s
        cdef list made  # owns the sections made here until they are attached
        # event.id: the first id key holding text, else the content hash (``program._id_lines``)
        w = None
        for j in range(self.nids):
            v = a[self.id_index[j]]
            if PyUnicode_CheckExact(v) and PyUnicode_GET_LENGTH(v):
                if not record.from_json:
                    dumps(self.sorted_values(a))  # the payload must still be JSON; raises when it is not
                w = <object>v
                break
        if w is None:
            w = content_hash(self.prefix + dumps(self.sorted_values(a)))
        event = self.event_template.copy()
        event[K_ID] = w
        event[K_CATEGORY] = list(event[K_CATEGORY])
        event[K_TYPE] = list(event[K_TYPE])
        extra = _PyDict_NewPresized(self.extra_size)
        doc = _PyDict_NewPresized(self.doc_size)
        doc[K_TS] = None
        doc[K_EVENT] = event
        doc[K_SF] = extra
        for j in range(MAX_SLOTS):
            section[j] = NULL
        section[0], section[1], section[2] = <PyObject*>doc, <PyObject*>event, <PyObject*>extra
        made = []
        for j in range(self.nops):
            if j == self.envelope_at:
                self.add_envelope(record, extra)
            op = &self.ops[j]
            v = a[op.index]
            if v == NONE or (PyUnicode_CheckExact(v) and PyUnicode_GET_LENGTH(v) == 0):
                continue
            if op.conv == C_UNMAPPED:
                if not (PyUnicode_CheckExact(v) or PyLong_CheckExact(v) or PyFloat_CheckExact(v)
                        or PyBool_Check(v) or PyDict_CheckExact(v) or PyList_CheckExact(v)):
                    return None  # other types: the reference decides (JSON check, sanitising)
                Dset(extra, <object>op.leaf, v)
                continue
            if op.conv == C_TEXT and PyUnicode_CheckExact(v):
                w = <object>v
            else:
                w = self.convert(op, v)
                if op.conv != C_TEXT and op.conv != C_INT and (w is None or (w.__class__ is str and not w)):
                    continue
            if section[op.slot] == NULL:
                s = {}
                made.append(s)
                section[op.slot] = <PyObject*>s
            Dset(<object>section[op.slot], <object>op.leaf, <PyObject*>w)
        if self.envelope_at == self.nops:
            self.add_envelope(record, extra)
        for j in range(self.npicks):  # the first choice present whose converter gives a value
            w = None
            for c in range(self.pick_size[j]):
                op = &self.pick_choice[j][c]
                v = a[op.index]
                if v == NONE or (PyUnicode_CheckExact(v) and PyUnicode_GET_LENGTH(v) == 0):
                    continue
                w = self.convert(op, v)
                if w is not None:
                    break
            if w is not None:
                if section[self.pick_slot[j]] == NULL:
                    s = {}
                    made.append(s)
                    section[self.pick_slot[j]] = <PyObject*>s
                Dset(<object>section[self.pick_slot[j]], <object>self.pick_leaf[j], <PyObject*>w)
        for depth in range(3, 0, -1):  # attach the non-empty sections, inner ones first
            for j in range(3, self.nslots):
                if self.slot_depth[j] == depth and section[j] != NULL and PyDict_GET_SIZE(<object>section[j]):
                    c = self.slot_parent[j]
                    if section[c] == NULL:
                        s = {}
                        made.append(s)
                        section[c] = <PyObject*>s
                    Dset(<object>section[c], <object>self.slot_key[j], section[j])
        for j in range(self.nhooks):
            if not self.inline_hook(j, a, doc, event, extra):
                (<object>self.hook_fn[j])(payload, doc)
        if doc[K_TS] is None:
            return None  # e.g. an unknown kind without a time: the reference uses the receive time
        if ingested is not None:
            event[K_INGESTED] = ingested
        self.add_related(doc, extra)
        doc[K_ECS] = {K_VERSION: ECS}
        if self.raw:
            extra[K_RAW] = payload
        if PyDict_GET_SIZE(doc) > self.doc_size:
            self.doc_size = PyDict_GET_SIZE(doc)
        if PyDict_GET_SIZE(extra) > self.extra_size:
            self.extra_size = PyDict_GET_SIZE(extra)
        return doc

    cdef list sorted_values(self, PyObject** a):
        return [<object>a[self.sorted_index[i]] for i in range(self.size)]

    cdef int inline_hook(self, int j, PyObject** a, dict doc, dict event, dict extra) except -1:
        """Hook ``j``'s common case, as ``program._INLINE`` writes it; False: call the hook itself."""
        cdef int kind = self.hook_kind[j]
        cdef PyObject* v
        cdef PyObject* other
        cdef double lat, lon
        cdef object found
        if kind == H_CALL:
            return 0
        v = a[self.hook_a[j]]
        if kind == H_GEO:
            other = a[self.hook_b[j]]
            if not (PyFloat_CheckExact(v) and PyFloat_CheckExact(other)):
                return 0
            lat, lon = PyFloat_AS_DOUBLE(v), PyFloat_AS_DOUBLE(other)
            if not (isfinite(lat) and isfinite(lon)):
                return 0
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                source = doc.get(K_SOURCE)
                if source is None:
                    source = doc[K_SOURCE] = {}
                geo = source.get(K_GEO)
                if geo is None:
                    geo = source[K_GEO] = {}
                geo[K_LOCATION] = {K_LAT: <object>v, K_LON: <object>other}
            return 1
        if not PyUnicode_CheckExact(v):
            return 0
        if kind == H_STATUS:
            if PyUnicode_GET_LENGTH(v) == 0:
                return 0
            if PyObject_RichCompareBool(v, self.hook_text[j], Py_EQ):
                event[K_OUTCOME] = SUCCESS
            else:
                event[K_OUTCOME] = FAILURE
                event[K_REASON] = <object>v
        elif kind == H_TLS:
            if PyUnicode_GET_LENGTH(v):
                found = self.tls(v)
                if found is not None:
                    section = doc.get(K_TLS)
                    if section is None:
                        section = doc[K_TLS] = {}
                    section[K_PROTOCOL], section[K_VERSION] = found
        elif kind == H_LOGIN_TYPE:
            if PyUnicode_GET_LENGTH(v):
                other = Dget(LOGIN_TYPES, v)
                Dset(extra, K_LOGIN_TYPE, other if other != NULL else v)
                Dset(extra, K_LOGIN_TYPE_CODE, v)
        return 1

    cdef object tls(self, PyObject* v):
        cdef PyObject* hit = Dget(TLS_MEMO, v)
        if hit != NULL:
            return <object>hit
        found = tls_version(<object>v)
        if len(TLS_MEMO) < 256:
            TLS_MEMO[<object>v] = found
        return found

    cdef int add_envelope(self, object record, dict extra) except -1:
        """The record's envelope into ``salesforce.*``, checked once per envelope object."""
        envelope = record.envelope
        if envelope is not self.seen:
            checked = envelope if envelope and plain_envelope(envelope) else envelope_fields(envelope)
            self.seen, self.checked = envelope, checked  # both after the check: a raise keeps the memo
        if self.checked:
            extra.update(self.checked)
        return 0

    cdef int add_related(self, dict doc, dict extra) except -1:
        """``engine._related``; inline for a user without target/effective parts and no extra IPs."""
        user = doc.get(K_USER)
        if K_RELATED_IP in extra or (user and (K_TARGET in user or K_EFFECTIVE in user)):
            _related(doc, extra)
            return 0
        source = doc.get(K_SOURCE)
        ip = source.get(K_IP) if source else None
        ips = [] if ip is None else [ip]
        users = []
        if user:
            name = user.get(K_NAME)
            if name.__class__ is str:
                users.append(name)
            uid = user.get(K_ID)
            if uid.__class__ is str and uid not in users:
                users.append(uid)
        if ips or users:
            doc[K_RELATED] = {K_IP: ips, K_USER: users}
        return 0

    def run(self, list records, Py_ssize_t start, list events, list rejected, object ingested, object slow):
        """``program.Program``: builds records from ``start`` while they have this shape; returns the index
        of the first one it did not take. A record off the common path goes to ``slow`` (the reference)."""
        cdef PyObject* a[MAX_KEYS]  # the payload's values in shape order
        cdef Py_ssize_t i = start, n = len(records)
        cdef Py_ssize_t pos
        cdef int j
        cdef bint keys_known
        cdef PyObject* k
        self.seen = self.checked = None
        while i < n:
            record = records[i]
            payload = record.payload
            if not PyDict_CheckExact(<PyObject*>payload) or record.kind != self.kind or record.source != self.source:
                return i
            fields = record.fields  # the source's word for the key sequence (an ELF file's header tuple)
            keys_known = fields is self.shape or (fields is not None and fields == self.shape)
            if not keys_known and (fields is not None or PyDict_GET_SIZE(payload) != self.size):
                return i
            pos = j = 0
            if PyDict_GET_SIZE(payload) == self.size:  # unpacked, and without ``fields`` compared, in one pass
                while PyDict_Next(payload, &pos, &k, &a[j]):
                    if not keys_known and k != PyTuple_GET_ITEM(self.shape, j) and not PyObject_RichCompareBool(
                            k, PyTuple_GET_ITEM(self.shape, j), Py_EQ):
                        return i
                    j += 1
            i += 1
            try:  # a payload unlike its ``fields`` (not from our sources) goes to the reference whole
                doc = self.build(record, payload, a, ingested) if j == self.size else None
            except Exception:
                doc = None
            if doc is None:
                doc = slow(record)
                if doc.__class__ is dict:
                    events.append(doc)
                else:
                    rejected.append(doc)
            else:
                events.append(doc)
        return i
