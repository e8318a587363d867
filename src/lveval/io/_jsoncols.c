/* Columns straight from a JSON array (or JSON Lines) of box detections, without Python objects.
 *
 * Parses the records between an array's brackets, or the lines of a JSON
 * Lines file (blank lines skipped, each record's line number kept), when every record is an
 * object with exactly the keys image_id, category_id, bbox (4 numbers) and
 * score, in any order, and writes them into caller-owned columns.  Anything
 * else (another key, a mask, a null, invalid JSON, an id that does not fit
 * in 64 bits, a number out of range) stops the parse with BAIL, and the
 * caller decodes the file with the general decoder instead, which accepts
 * what it accepts and names what is wrong.  So this file never decides
 * whether an input is valid: it only takes the common case faster.
 *
 * Numbers are correctly rounded, like Python's float(): a significand of at
 * most 2^53 with a power of ten up to 1e22 is exact in one IEEE division or
 * multiplication (Clinger's fast path); everything else goes to the C
 * library's strtod in the "C" locale (correctly rounded on glibc and
 * macOS).  An integer token in a float field is converted like float(int),
 * so "-0" gives +0.0 as the general decoder does.  The GIL is released
 * while parsing, so pieces of one file can be parsed on several threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GLIBC__) || defined(__APPLE__)
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
#define HAVE_STRTOD_L 1
static locale_t c_locale = (locale_t)0;
#endif

enum { ST_OK = 0, ST_BAIL = 1, ST_FULL = 2 };

static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef const unsigned char *ptr;

static inline ptr skip_ws(ptr p, ptr end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* Whitespace within one line of a JSON Lines file. */
static inline ptr skip_inline_ws(ptr p, ptr end) {
    while (p < end && (*p == ' ' || *p == '\r' || *p == '\t')) p++;
    return p;
}

#define SKIP(p, end, lines) ((lines) ? skip_inline_ws((p), (end)) : skip_ws((p), (end)))

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A JSON number at p as a double; NULL when p does not start one or its value is not finite. */
static ptr parse_double(ptr p, ptr end, double *out) {
    ptr start = p;
    int neg = 0, nd = 0, dropped = 0, integral = 1;
    uint64_t m = 0;
    int64_t e10 = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); nd++; }
            else { dropped = 1; e10++; }
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integral = 0;
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (nd == 0 && *p == '0') { e10--; }
            else if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); nd++; e10--; }
            else if (*p != '0') { dropped = 1; }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        int64_t ex = 0;
        integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) { eneg = (*p == '-'); p++; }
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++)
            if (ex < 100000) ex = ex * 10 + (*p - '0');
        e10 += eneg ? -ex : ex;
    }
    if (m == 0 && !dropped) {   /* an integer token is an int first: -0 -> +0.0 */
        *out = (neg && !integral) ? -0.0 : 0.0;
        return p;
    }
#if FLT_EVAL_METHOD == 0
    if (!dropped && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 < 0 ? d / P10[-e10] : d * P10[e10];
        *out = neg ? -d : d;
        return p;
    }
#endif
#ifdef HAVE_STRTOD_L
    {
        char tmp[72];
        size_t len = (size_t)(p - start);
        char *stop;
        double d;
        if (len >= sizeof(tmp)) return NULL;
        memcpy(tmp, start, len);
        tmp[len] = '\0';
        d = strtod_l(tmp, &stop, c_locale);
        if (stop != tmp + len || !isfinite(d)) return NULL;
        *out = d;
        return p;
    }
#else
    return NULL;
#endif
}

/* A JSON integer (no fraction, no exponent) that fits in int64; NULL otherwise. */
static ptr parse_int64(ptr p, ptr end, int64_t *out) {
    int neg = 0, nd = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {   /* 19 digits fit in uint64 */
            if (++nd > 19) return NULL;
            m = m * 10 + (uint64_t)(*p - '0');
        }
    } else {
        return NULL;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
    if (neg) {
        if (m > (UINT64_C(1) << 63)) return NULL;
        *out = (m == (UINT64_C(1) << 63)) ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX) return NULL;
        *out = (int64_t)m;
    }
    return p;
}

/* The key at p (just after its opening quote) and the closing quote: 0..4 (4, segmentation, only
 * when masks are read), or -1. */
static int key_at(ptr p, ptr end, ptr *after, int masks) {
    static const char *names[5] = {"image_id", "category_id", "bbox", "score", "segmentation"};
    static const size_t lens[5] = {8, 11, 4, 5, 12};
    for (int k = 0; k < (masks ? 5 : 4); k++) {
        size_t n = lens[k];
        if ((size_t)(end - p) > n && p[n] == '"' && memcmp(p, names[k], n) == 0) {
            *after = p + n + 1;
            return k;
        }
    }
    return -1;
}

typedef struct {
    int64_t *img, *cat, *line;
    double *score, *bbox;
    Py_ssize_t cap;
    /* masks (parse_masks only; seg_h NULL otherwise): size, counts strings end to end */
    int64_t *seg_h, *seg_w, *cnt_off;
    uint8_t *has_bbox, *cnt;
    Py_ssize_t cnt_cap, cnt_len;
} columns;

/* A counts string at p (its opening quote) appended to the counts buffer; NULL unless it holds
 * only printable ASCII and the escape \\ (COCO's alphabet '0'..'o' contains the backslash). */
static ptr parse_counts(ptr p, ptr end, columns *c) {
    ptr q;
    if (p >= end || *p != '"') return NULL;
    p++;
    q = (ptr)memchr(p, '"', (size_t)(end - p));
    if (q != NULL) {   /* the common case, no escape: check the span in one branch-free pass, copy it */
        Py_ssize_t n = q - p, j;
        unsigned odd = 0;
        for (j = 0; j < n; j++) odd |= (unsigned)(p[j] < 0x20) | (unsigned)(p[j] >= 0x80) | (unsigned)(p[j] == '\\');
        if (!odd) {
            if (c->cnt_len + n > c->cnt_cap) return NULL;
            memcpy(c->cnt + c->cnt_len, p, (size_t)n);
            c->cnt_len += n;
            return q + 1;
        }
    }
    while (p < end && *p != '"') {
        unsigned char ch = *p++;
        if (ch < 0x20 || ch >= 0x80) return NULL;
        if (ch == '\\') {
            if (p >= end || *p != '\\') return NULL;
            p++;
        }
        if (c->cnt_len >= c->cnt_cap) return NULL;
        c->cnt[c->cnt_len++] = ch;
    }
    return p < end ? p + 1 : NULL;
}

/* {"size": [h, w], "counts": "..."} (either order, nothing else) at p, for row i. */
static ptr parse_rle(ptr p, ptr end, columns *c, Py_ssize_t i, int lines) {
    int seen = 0;
    if (p >= end || *p != '{') return NULL;
    p = SKIP(p + 1, end, lines);
    for (;;) {
        if (p >= end || *p != '"') return NULL;
        if ((size_t)(end - p) > 6 && memcmp(p, "\"size\"", 6) == 0 && !(seen & 1)) {
            seen |= 1;
            p = SKIP(p + 6, end, lines);
            if (p >= end || *p != ':') return NULL;
            p = SKIP(p + 1, end, lines);
            if (p >= end || *p != '[') return NULL;
            p = SKIP(p + 1, end, lines);
            p = parse_int64(p, end, &c->seg_h[i]);
            if (p == NULL) return NULL;
            p = SKIP(p, end, lines);
            if (p >= end || *p != ',') return NULL;
            p = SKIP(p + 1, end, lines);
            p = parse_int64(p, end, &c->seg_w[i]);
            if (p == NULL) return NULL;
            p = SKIP(p, end, lines);
            if (p >= end || *p != ']') return NULL;
            p++;
        } else if ((size_t)(end - p) > 8 && memcmp(p, "\"counts\"", 8) == 0 && !(seen & 2)) {
            seen |= 2;
            p = SKIP(p + 8, end, lines);
            if (p >= end || *p != ':') return NULL;
            p = SKIP(p + 1, end, lines);
            p = parse_counts(p, end, c);
            if (p == NULL) return NULL;
        } else {
            return NULL;
        }
        p = SKIP(p, end, lines);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = SKIP(p + 1, end, lines);
    }
    if (seen != 3) return NULL;
    c->cnt_off[i + 1] = c->cnt_len;
    return p + 1;
}

/* One record at p (its '{'), written to row i; NULL when it is not a plain box record. */
static ptr parse_record(ptr p, ptr end, columns *c, Py_ssize_t i, int lines) {
    int seen = 0;
    if (p >= end || *p != '{') return NULL;
    p = SKIP(p + 1, end, lines);
    for (;;) {
        ptr q;
        int k;
        if (p >= end || *p != '"') return NULL;
        k = key_at(p + 1, end, &q, c->seg_h != NULL);
        if (k < 0 || (seen & (1 << k))) return NULL;
        seen |= 1 << k;
        p = SKIP(q, end, lines);
        if (p >= end || *p != ':') return NULL;
        p = SKIP(p + 1, end, lines);
        switch (k) {
        case 0: p = parse_int64(p, end, &c->img[i]); break;
        case 1: p = parse_int64(p, end, &c->cat[i]); break;
        case 3: p = parse_double(p, end, &c->score[i]); break;
        case 2:
            if (p >= end || *p != '[') return NULL;
            for (int j = 0; j < 4; j++) {
                p = SKIP(p + 1, end, lines);
                p = parse_double(p, end, &c->bbox[4 * i + j]);
                if (p == NULL) return NULL;
                p = SKIP(p, end, lines);
                if (p >= end || *p != (j < 3 ? ',' : ']')) return NULL;
            }
            p++;
            break;
        case 4: p = parse_rle(p, end, c, i, lines); break;
        }
        if (p == NULL) return NULL;
        p = SKIP(p, end, lines);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = SKIP(p + 1, end, lines);
    }
    if (c->seg_h == NULL) return seen == 15 ? p + 1 : NULL;
    if ((seen | 4) != 31) return NULL;   /* masks: a box is optional (the caller checks all or none) */
    c->has_bbox[i] = (seen & 4) != 0;
    return p + 1;
}

/* Records of a JSON array between start and end (inside the brackets). */
static int parse_array(ptr base, Py_ssize_t start, Py_ssize_t end_off, columns *c, Py_ssize_t *rows,
                       Py_ssize_t *stop) {
    ptr end = base + end_off;
    ptr p = skip_ws(base + start, end);
    Py_ssize_t n = 0;
    int status = ST_OK;
    if (p < end) {
        for (;;) {
            ptr q;
            if (n >= c->cap) { status = ST_FULL; break; }
            q = parse_record(p, end, c, n, 0);
            if (q == NULL) { status = ST_BAIL; break; }
            n++;
            p = skip_ws(q, end);
            if (p >= end) break;
            if (*p != ',') { status = ST_BAIL; break; }
            p = skip_ws(p + 1, end);
            if (p >= end) { status = ST_BAIL; break; }   /* trailing comma */
        }
    }
    *rows = n;
    *stop = (Py_ssize_t)(p - base);
    return status;
}

/* Records of JSON Lines between start and end, one per line; blank lines are skipped. Line
 * numbers are counted from 1 at start; *newlines is the number of line breaks consumed. */
static int parse_lines(ptr base, Py_ssize_t start, Py_ssize_t end_off, columns *c, Py_ssize_t *rows,
                       Py_ssize_t *stop, Py_ssize_t *newlines) {
    ptr end = base + end_off;
    ptr p = base + start;
    Py_ssize_t n = 0, line = 1;
    int status = ST_OK;
    for (;;) {
        ptr q;
        p = skip_inline_ws(p, end);
        if (p >= end) break;
        if (*p == '\n') { line++; p++; continue; }
        if (n >= c->cap) { status = ST_FULL; break; }
        q = parse_record(p, end, c, n, 1);
        if (q == NULL) { status = ST_BAIL; break; }
        c->line[n] = line;
        n++;
        p = skip_inline_ws(q, end);
        if (p >= end) break;
        if (*p != '\n') { status = ST_BAIL; break; }
        line++;
        p++;
    }
    *rows = n;
    *stop = (Py_ssize_t)(p - base);
    *newlines = line - 1;
    return status;
}

PyDoc_STRVAR(parse_boxes_doc,
"parse_boxes(buf, start, end, image_id, category_id, score, bbox, line=None)\n"
"    -> (rows, status, stop, newlines)\n\n"
"Parse the box records in buf[start:end] into the writable int64/int64/float64/\n"
"float64 columns (bbox holds 4 values per row): the inside of a JSON array, or,\n"
"when an int64 column ``line`` is given, JSON Lines (each row's line number,\n"
"counted from 1 at start, goes to ``line``; newlines counts the line breaks read).\n"
"status 0: all records parsed; 1: a record this parser does not take (use the\n"
"general decoder); 2: the columns are full. stop is where parsing stopped.");

static PyObject *parse_boxes(PyObject *self, PyObject *args) {
    PyObject *buf_o, *img_o, *cat_o, *score_o, *bbox_o, *line_o = Py_None;
    Py_ssize_t start, end, rows = 0, stop = 0, newlines = 0;
    Py_buffer buf, cols[5];
    static const char *names[5] = {"image_id", "category_id", "score", "bbox", "line"};
    PyObject *objs[5];
    int ncols, status, i;
    columns c;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOOOO|O", &buf_o, &start, &end, &img_o, &cat_o, &score_o, &bbox_o, &line_o))
        return NULL;
    objs[0] = img_o; objs[1] = cat_o; objs[2] = score_o; objs[3] = bbox_o; objs[4] = line_o;
    ncols = line_o == Py_None ? 4 : 5;
    if (PyObject_GetBuffer(buf_o, &buf, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || end > buf.len || start > end) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "start/end outside the buffer");
        return NULL;
    }
    for (i = 0; i < ncols; i++) {
        if (PyObject_GetBuffer(objs[i], &cols[i], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
            cols[i].len % 8 != 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "%s: expected a column of 8-byte items", names[i]);
            else
                i--;   /* this one was not acquired */
            for (; i >= 0; i--) PyBuffer_Release(&cols[i]);
            PyBuffer_Release(&buf);
            return NULL;
        }
    }
    c.img = (int64_t *)cols[0].buf;
    c.cat = (int64_t *)cols[1].buf;
    c.score = (double *)cols[2].buf;
    c.bbox = (double *)cols[3].buf;
    c.line = ncols == 5 ? (int64_t *)cols[4].buf : NULL;
    c.seg_h = c.seg_w = c.cnt_off = NULL;
    c.has_bbox = c.cnt = NULL;
    c.cnt_cap = c.cnt_len = 0;
    c.cap = cols[0].len / 8;
    if (cols[1].len / 8 < c.cap) c.cap = cols[1].len / 8;
    if (cols[2].len / 8 < c.cap) c.cap = cols[2].len / 8;
    if (cols[3].len / 32 < c.cap) c.cap = cols[3].len / 32;
    if (ncols == 5 && cols[4].len / 8 < c.cap) c.cap = cols[4].len / 8;
    Py_BEGIN_ALLOW_THREADS
    if (ncols == 5)
        status = parse_lines((ptr)buf.buf, start, end, &c, &rows, &stop, &newlines);
    else
        status = parse_array((ptr)buf.buf, start, end, &c, &rows, &stop);
    Py_END_ALLOW_THREADS
    for (i = ncols - 1; i >= 0; i--) PyBuffer_Release(&cols[i]);
    PyBuffer_Release(&buf);
    return Py_BuildValue("ninn", rows, status, stop, newlines);
}

PyDoc_STRVAR(parse_masks_doc,
"parse_masks(buf, start, end, image_id, category_id, score, bbox, has_bbox, seg_h, seg_w,\n"
"            counts_offsets, counts, line=None) -> (rows, status, stop, newlines, counts_len)\n\n"
"As parse_boxes, for records with a segmentation {\"size\": [h, w], \"counts\": \"...\"} (compressed\n"
"RLE, keys in any order) and an optional bbox (has_bbox[i] says; bbox[i] is unset without one):\n"
"seg_h and seg_w (int64) get the size, the counts strings go end to end into the uint8 buffer\n"
"counts, row i's ending at counts_offsets[i + 1] (counts_offsets[0] is set to 0).");

static PyObject *parse_masks(PyObject *self, PyObject *args) {
    PyObject *buf_o, *objs[10], *line_o = Py_None;
    Py_ssize_t start, end, rows = 0, stop = 0, newlines = 0;
    Py_buffer buf, cols[10];
    static const Py_ssize_t item[10] = {8, 8, 8, 32, 1, 8, 8, 8, 1, 8};
    int ncols, status, i;
    columns c;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOOOOOOOOO|O", &buf_o, &start, &end, &objs[0], &objs[1], &objs[2], &objs[3],
                          &objs[4], &objs[5], &objs[6], &objs[7], &objs[8], &line_o))
        return NULL;
    objs[9] = line_o;
    ncols = line_o == Py_None ? 9 : 10;
    if (PyObject_GetBuffer(buf_o, &buf, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || end > buf.len || start > end) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "start/end outside the buffer");
        return NULL;
    }
    for (i = 0; i < ncols; i++) {
        if (PyObject_GetBuffer(objs[i], &cols[i], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
            cols[i].len % item[i] != 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "column %d: unexpected item size", i);
            else
                i--;
            for (; i >= 0; i--) PyBuffer_Release(&cols[i]);
            PyBuffer_Release(&buf);
            return NULL;
        }
    }
    c.img = (int64_t *)cols[0].buf;
    c.cat = (int64_t *)cols[1].buf;
    c.score = (double *)cols[2].buf;
    c.bbox = (double *)cols[3].buf;
    c.has_bbox = (uint8_t *)cols[4].buf;
    c.seg_h = (int64_t *)cols[5].buf;
    c.seg_w = (int64_t *)cols[6].buf;
    c.cnt_off = (int64_t *)cols[7].buf;
    c.cnt = (uint8_t *)cols[8].buf;
    c.line = ncols == 10 ? (int64_t *)cols[9].buf : NULL;
    c.cnt_cap = cols[8].len;
    c.cnt_len = 0;
    c.cap = cols[0].len / 8;
    for (i = 1; i < ncols; i++) {
        Py_ssize_t per = i == 7 ? 8 : item[i], cap_i;
        if (i == 8) continue;
        cap_i = cols[i].len / per - (i == 7 ? 1 : 0);
        if (cap_i < c.cap) c.cap = cap_i;
    }
    if (c.cap < 0) c.cap = 0;
    if (cols[7].len >= 8) c.cnt_off[0] = 0;
    Py_BEGIN_ALLOW_THREADS
    if (ncols == 10)
        status = parse_lines((ptr)buf.buf, start, end, &c, &rows, &stop, &newlines);
    else
        status = parse_array((ptr)buf.buf, start, end, &c, &rows, &stop);
    Py_END_ALLOW_THREADS
    for (i = ncols - 1; i >= 0; i--) PyBuffer_Release(&cols[i]);
    PyBuffer_Release(&buf);
    return Py_BuildValue("ninnn", rows, status, stop, newlines, c.cnt_len);
}

static PyMethodDef methods[] = {
    {"parse_boxes", parse_boxes, METH_VARARGS, parse_boxes_doc},
    {"parse_masks", parse_masks, METH_VARARGS, parse_masks_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsoncols", "Columns from JSON arrays of box detections (see fastjson.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsoncols(void) {
#ifdef HAVE_STRTOD_L
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (c_locale == (locale_t)0) {
            PyErr_SetString(PyExc_OSError, "cannot create the C locale for number parsing");
            return NULL;
        }
    }
#endif
    return PyModule_Create(&module);
}
