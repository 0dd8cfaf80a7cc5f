/* lambdascope._scan: the byte scanning of lambdascope.logscan, in one pass per kind.
 *
 * Optional accelerator: lambdascope.logscan gives the same results without it (tests
 * compare both). Every rule here restates a regex of logscan.py:
 *   - scan_reports: _ANY_REPORT_RE.finditer (every "REPORT " occurrence; the canonical
 *     text REPORT line of _TEXT_REPORT_RE parsed where it follows);
 *   - find_all: non-overlapping occurrences of a literal (re.escape(literal).finditer);
 *   - timestamp_starts: logscan._timestamp_starts;
 *   - count of newlines: bytes.count(b"\n").
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* A growable array of fixed-size items, returned to Python as bytes. */
typedef struct {
    char *data;
    Py_ssize_t len;  /* bytes used */
    Py_ssize_t cap;
} Buf;

static int buf_add(Buf *b, const void *item, Py_ssize_t size) {
    if (b->len + size > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + size) cap *= 2;
        char *data = PyMem_Realloc(b->data, cap);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, item, size);
    b->len += size;
    return 0;
}

static PyObject *buf_bytes(Buf *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}

static int add_i64(Buf *b, int64_t v) { return buf_add(b, &v, sizeof v); }
static int add_f64(Buf *b, double v) { return buf_add(b, &v, sizeof v); }

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
/* _WS: [ \t\r\x0b\x0c] */
static inline int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == 0x0b || c == 0x0c;
}
/* the request id class [!-9;-~] */
static inline int is_rid(unsigned char c) { return c >= '!' && c <= '~' && c != ':'; }

static Py_ssize_t find(const char *s, Py_ssize_t n, Py_ssize_t from, const char *lit,
                       Py_ssize_t m) {
    if (m == 0) return from <= n ? from : -1;
    if (from + m > n) return -1;
#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
    const char *hit = memmem(s + from, (size_t)(n - from), lit, (size_t)m);
    return hit == NULL ? -1 : hit - s;
#else
    while (from + m <= n) {
        const char *hit = memchr(s + from, lit[0], (size_t)(n - m + 1 - from));
        if (hit == NULL) return -1;
        Py_ssize_t at = hit - s;
        if (memcmp(s + at, lit, (size_t)m) == 0) return at;
        from = at + 1;
    }
    return -1;
#endif
}

/* literal at i? advances *i past it */
static inline int lit(const char *s, Py_ssize_t n, Py_ssize_t *i, const char *text) {
    Py_ssize_t m = (Py_ssize_t)strlen(text);
    if (*i + m > n || memcmp(s + *i, text, (size_t)m) != 0) return 0;
    *i += m;
    return 1;
}

/* _WS+ (at least one) */
static inline int ws1(const char *s, Py_ssize_t n, Py_ssize_t *i) {
    Py_ssize_t j = *i;
    while (j < n && is_ws((unsigned char)s[j])) j++;
    if (j == *i) return 0;
    *i = j;
    return 1;
}

/* NUM: \d+(?:\.\d+)? -> [start, end) */
static inline int num(const char *s, Py_ssize_t n, Py_ssize_t *i, Py_ssize_t *a,
                      Py_ssize_t *b) {
    Py_ssize_t j = *i;
    while (j < n && is_digit((unsigned char)s[j])) j++;
    if (j == *i) return 0;
    if (j + 1 < n && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
        j += 1;
        while (j < n && is_digit((unsigned char)s[j])) j++;
    }
    *a = *i;
    *b = j;
    *i = j;
    return 1;
}

/* \d{1,15} followed by what the caller checks -> value */
static inline int int15(const char *s, Py_ssize_t n, Py_ssize_t *i, int64_t *value) {
    Py_ssize_t j = *i;
    int64_t v = 0;
    while (j < n && is_digit((unsigned char)s[j])) {
        if (j - *i == 15) return 0; /* 16 digits: \d{1,15} cannot be followed by " MB" */
        v = v * 10 + (s[j] - '0');
        j++;
    }
    if (j == *i) return 0;
    *value = v;
    *i = j;
    return 1;
}

/* float() of s[a:b] (ASCII digits and at most one dot): the same conversion */
static int to_double(const char *s, Py_ssize_t a, Py_ssize_t b, double *out) {
    char small[64];
    char *text = small;
    Py_ssize_t m = b - a;
    if (m + 1 > (Py_ssize_t)sizeof small) {
        text = PyMem_Malloc(m + 1);
        if (text == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    memcpy(text, s + a, (size_t)m);
    text[m] = '\0';
    double v = PyOS_string_to_double(text, NULL, NULL);
    if (text != small) PyMem_Free(text);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 1;
}

/* the timestamp core \d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2} at `at`? */
static const int TS_DIGITS[14] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
static inline int ts_core(const char *s, Py_ssize_t n, Py_ssize_t at) {
    if (at < 0 || at + 19 > n) return 0;
    const unsigned char *p = (const unsigned char *)s + at;
    if (p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != ' ') || p[13] != ':' ||
        p[16] != ':')
        return 0;
    for (int k = 0; k < 14; k++)
        if (!is_digit(p[TS_DIGITS[k]])) return 0;
    return 1;
}

typedef struct {
    Py_ssize_t end;
    Py_ssize_t rid_a, rid_b;
    Py_ssize_t dur_a, dur_b, bill_a, bill_b, init_a, init_b;
    int64_t memory, used;
    int has_init;
} Report;

/* _TEXT_REPORT_RE at i (i is just after "REPORT "); 1 with the fields, else 0 */
static int canonical(const char *s, Py_ssize_t n, Py_ssize_t i, Report *r) {
    if (!lit(s, n, &i, "RequestId:")) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    r->rid_a = i;
    while (i < n && is_rid((unsigned char)s[i])) i++;
    if (i == r->rid_a) return 0;
    r->rid_b = i;
    if (!ws1(s, n, &i) || !lit(s, n, &i, "Duration: ") ||
        !num(s, n, &i, &r->dur_a, &r->dur_b) || !lit(s, n, &i, " ms"))
        return 0;
    if (!ws1(s, n, &i) || !lit(s, n, &i, "Billed Duration: ") ||
        !num(s, n, &i, &r->bill_a, &r->bill_b) || !lit(s, n, &i, " ms"))
        return 0;
    if (!ws1(s, n, &i) || !lit(s, n, &i, "Memory Size: ") || !int15(s, n, &i, &r->memory) ||
        !lit(s, n, &i, " MB"))
        return 0;
    if (!ws1(s, n, &i) || !lit(s, n, &i, "Max Memory Used: ") ||
        !int15(s, n, &i, &r->used) || !lit(s, n, &i, " MB"))
        return 0;
    /* (?: _WS+ Init Duration: NUM ms)? -- taking it never makes a match fail that
       leaving it out would let succeed (what follows must then be _WS* and the end or
       the X-Ray trailer, and "Init" is neither) */
    r->has_init = 0;
    Py_ssize_t j = i;
    if (ws1(s, n, &j) && lit(s, n, &j, "Init Duration: ") &&
        num(s, n, &j, &r->init_a, &r->init_b) && lit(s, n, &j, " ms")) {
        r->has_init = 1;
        i = j;
    }
    while (i < n && is_ws((unsigned char)s[i])) i++;
    if (lit(s, n, &i, "XRAY TraceId: ")) {
        /* (?:(?!TS)[^\n])* then \n or the end: no timestamp may begin before the line end */
        while (i < n && s[i] != '\n') {
            if (ts_core(s, n, i)) return 0;
            i++;
        }
    }
    if (i < n && s[i] != '\n') return 0;
    r->end = i;
    return 1;
}

static PyObject *scan_reports(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len;
    Buf starts = {0}, ends = {0}, dur = {0}, bill = {0}, mem = {0}, used = {0}, init = {0},
        others = {0};
    PyObject *rids = PyList_New(0);
    PyObject *result = NULL;
    if (rids == NULL) goto done;
    Py_ssize_t at = 0;
    while ((at = find(s, n, at, "REPORT ", 7)) >= 0) {
        Report r;
        if (!canonical(s, n, at + 7, &r)) {
            if (add_i64(&others, at) < 0) goto done;
            at += 7;
            continue;
        }
        double d, b, it = NAN;
        if (to_double(s, r.dur_a, r.dur_b, &d) < 0 || to_double(s, r.bill_a, r.bill_b, &b) < 0)
            goto done;
        if (r.has_init && to_double(s, r.init_a, r.init_b, &it) < 0) goto done;
        PyObject *rid = PyUnicode_DecodeASCII(s + r.rid_a, r.rid_b - r.rid_a, NULL);
        if (rid == NULL) goto done;
        int failed = PyList_Append(rids, rid);
        Py_DECREF(rid);
        if (failed < 0 || add_i64(&starts, at) < 0 || add_i64(&ends, r.end) < 0 ||
            add_f64(&dur, d) < 0 || add_f64(&bill, b) < 0 || add_i64(&mem, r.memory) < 0 ||
            add_i64(&used, r.used) < 0 || add_f64(&init, it) < 0)
            goto done;
        at = r.end;
    }
    result = Py_BuildValue("(NNNNNNNNN)", buf_bytes(&starts), buf_bytes(&ends), rids,
                           buf_bytes(&dur), buf_bytes(&bill), buf_bytes(&mem),
                           buf_bytes(&used), buf_bytes(&init), buf_bytes(&others));
    rids = NULL; /* stolen */
done:
    Py_XDECREF(rids);
    PyMem_Free(starts.data);
    PyMem_Free(ends.data);
    PyMem_Free(dur.data);
    PyMem_Free(bill.data);
    PyMem_Free(mem.data);
    PyMem_Free(used.data);
    PyMem_Free(init.data);
    PyMem_Free(others.data);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *find_all(PyObject *self, PyObject *args) {
    Py_buffer view, needle;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &needle)) return NULL;
    Buf found = {0};
    PyObject *result = NULL;
    Py_ssize_t at = 0;
    if (needle.len > 0) {
        while ((at = find(view.buf, view.len, at, needle.buf, needle.len)) >= 0) {
            if (add_i64(&found, at) < 0) goto done;
            at += needle.len;
        }
    }
    result = buf_bytes(&found);
done:
    PyMem_Free(found.data);
    PyBuffer_Release(&view);
    PyBuffer_Release(&needle);
    return result;
}

static PyObject *timestamp_starts(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*n", &view, &start)) return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len;
    Buf found = {0};
    PyObject *result = NULL;
    Py_ssize_t d = start + 4 > 0 ? start + 4 : 0;
    while (d < n) {
        const char *hit = memchr(s + d, '-', (size_t)(n - d));
        if (hit == NULL) break;
        d = hit - s;
        if (ts_core(s, n, d - 4) && add_i64(&found, d - 4) < 0) goto done;
        d += 1;
    }
    result = buf_bytes(&found);
done:
    PyMem_Free(found.data);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *newlines(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    const char *s = view.buf, *end = (const char *)view.buf + view.len;
    Py_ssize_t count = 0;
    while (s < end && (s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        count++;
        s++;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"newlines", newlines, METH_VARARGS, "newlines(buf) -> int: buf.count(b\"\\n\")."},
    {"scan_reports", scan_reports, METH_VARARGS,
     "scan_reports(buf) -> (starts, ends, request_ids, duration, billed, memory, used, "
     "init, others): every \"REPORT \" occurrence; the canonical lines parsed (arrays as "
     "bytes: int64 / float64, init NaN when absent), the others' positions."},
    {"find_all", find_all, METH_VARARGS,
     "find_all(buf, literal) -> int64 bytes: non-overlapping occurrences."},
    {"timestamp_starts", timestamp_starts, METH_VARARGS,
     "timestamp_starts(buf, start) -> int64 bytes: where timestamp cores begin, at or "
     "after start."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
