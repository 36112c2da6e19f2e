/*
 * RFC 9162 Merkle tree hot paths for ledger.merkle: leaf and node hashing
 * of append batches, and inclusion and consistency proofs built from
 * in-memory stored hash levels. Python callers use ledger/merkle/native.py,
 * which documents each function. Every function returns exactly what its
 * pure-Python counterpart in stored.py or proof.py returns.
 *
 * Stored hash (level, index) is the hash of the leaves
 * [index * 2**level, (index + 1) * 2**level). The proof builders read it
 * from images[level] when level >= MIN_IMAGE_LEVEL and hash it up from
 * a span of leaf hashes otherwise.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/*
 * SHA256_Init/Update/Final are deprecated since OpenSSL 3.0 but still
 * present. On OpenSSL 3.0.19 with SHA-NI (the 2-core build machine) they
 * hash a 65-byte node in about 200 ns, against about 400 ns through
 * EVP_DigestInit_ex with a fetched EVP_MD. A proof at 10M leaves hashes
 * about 20 nodes. Declaring the 1.1.1 API level keeps them declared
 * without deprecation warnings.
 */
#define OPENSSL_API_COMPAT 0x10101000L
#include <openssl/sha.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#define HASH_SIZE 32
#define NODE_INPUT_SIZE (1 + 2 * HASH_SIZE)

/* Levels of stored hashes that a tree of fewer than 2**63 leaves has. */
#define MAX_LEVELS 64

/* Stored hashes of lower levels are hashed up from a span of leaf hashes. */
#define MIN_IMAGE_LEVEL 4

/*
 * Hash at least this many input bytes before releasing the GIL, because
 * releasing and taking it back costs more than hashing a few nodes.
 * CPython's hashlib uses the same 2048-byte threshold (HASHLIB_GIL_MINSIZE).
 */
#define GIL_MIN_BYTES 2048

/* Bound on the ids of one proof: fewer than 64 each of siblings, subtrees
 * right of the fork and subtrees left of it, plus the first id of a
 * consistency proof (see plan_path). */
#define MAX_PATH_IDS (3 * MAX_LEVELS)

typedef struct {
    PyObject *range_error;
} ModuleState;

static ModuleState *
module_state(PyObject *module)
{
    return (ModuleState *)PyModule_GetState(module);
}

/* ---------------------------------------------------------------------
 * SHA-256 with the RFC 9162 section 2.1.1 prefixes. OpenSSL's low-level
 * SHA-256 functions return 1 for a context that SHA256_Init set up
 * (crypto/sha/sha256.c in OpenSSL 3.0), so their results are not checked.
 */

static void
hash_leaf(const unsigned char *data, size_t size, unsigned char *out)
{
    static const unsigned char prefix = 0x00;
    SHA256_CTX ctx;

    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, data, size);
    SHA256_Final(out, &ctx);
}

/* out may overlap left or right, because the input is copied first. */
static void
hash_node(const unsigned char *left, const unsigned char *right,
          unsigned char *out)
{
    unsigned char input[NODE_INPUT_SIZE];
    SHA256_CTX ctx;

    input[0] = 0x01;
    memcpy(input + 1, left, HASH_SIZE);
    memcpy(input + 1 + HASH_SIZE, right, HASH_SIZE);
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, input, sizeof(input));
    SHA256_Final(out, &ctx);
}

/*
 * Hash the 2**level leaf hashes at leaves into the hash of their complete
 * subtree. Requires 0 <= level < MIN_IMAGE_LEVEL.
 */
static void
hash_subtree(const unsigned char *leaves, int level, unsigned char *out)
{
    unsigned char work[1 << (MIN_IMAGE_LEVEL - 2)][HASH_SIZE];
    size_t count = (size_t)1 << level;

    if (level == 0) {
        memcpy(out, leaves, HASH_SIZE);
        return;
    }
    for (size_t k = 0; k < count / 2; k++) {
        hash_node(leaves + 2 * k * HASH_SIZE,
                  leaves + (2 * k + 1) * HASH_SIZE, work[k]);
    }
    for (count /= 2; count > 1; count /= 2) {
        for (size_t k = 0; k < count / 2; k++) {
            hash_node(work[2 * k], work[2 * k + 1], work[k]);
        }
    }
    memcpy(out, work[0], HASH_SIZE);
}

static int
bit_length(uint64_t value)
{
    return value == 0 ? 0 : 64 - __builtin_clzll(value);
}

/* ---------------------------------------------------------------------
 * Argument helpers.
 */

/*
 * Take a PyBUF_SIMPLE buffer of whole 32-byte hashes from obj. Errors name
 * the argument as name, or as name[position] when position >= 0.
 */
static int
get_hash_buffer(PyObject *obj, Py_buffer *view, const char *name,
                Py_ssize_t position)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->len % HASH_SIZE == 0) {
        return 0;
    }
    if (position >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s[%zd] is %zd bytes; it must be a multiple of 32,"
                     " one SHA-256 hash per 32 bytes",
                     name, position, view->len);
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "%s is %zd bytes; it must be a multiple of 32, one"
                     " SHA-256 hash per 32 bytes",
                     name, view->len);
    }
    PyBuffer_Release(view);
    return -1;
}

/*
 * A Python int argument as an int64, with the side it overflowed to.
 * overflow is -1 below -2**63, +1 at or above 2**63, and 0 when value is
 * exact.
 */
typedef struct {
    PyObject *obj;
    long long value;
    int overflow;
} IntArg;

static int
parse_int(PyObject *obj, IntArg *arg)
{
    arg->obj = obj;
    arg->value = PyLong_AsLongLongAndOverflow(obj, &arg->overflow);
    if (arg->value == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/*
 * Compare two int arguments like Python does, setting *result to -1, 0
 * or 1. Only two values that overflow on the same side need Python's
 * comparison.
 */
static int
compare_ints(const IntArg *a, const IntArg *b, int *result)
{
    int less;
    int equal;

    if (a->overflow != b->overflow) {
        *result = a->overflow < b->overflow ? -1 : 1;
        return 0;
    }
    if (a->overflow == 0) {
        *result = (a->value > b->value) - (a->value < b->value);
        return 0;
    }
    less = PyObject_RichCompareBool(a->obj, b->obj, Py_LT);
    if (less < 0) {
        return -1;
    }
    equal = less ? 0 : PyObject_RichCompareBool(a->obj, b->obj, Py_EQ);
    if (equal < 0) {
        return -1;
    }
    *result = less ? -1 : (equal ? 0 : 1);
    return 0;
}

static const IntArg ZERO = {NULL, 0, 0};

static PyObject *
raise_too_large(PyObject *module, const char *name, PyObject *value)
{
    PyErr_Format(module_state(module)->range_error,
                 "%s %S is too large; the native module supports trees"
                 " of fewer than 2**63 leaves",
                 name, value);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Hash sources of the proof builders: images for the stored levels and
 * spans of leaf hashes for the levels below MIN_IMAGE_LEVEL.
 */

typedef struct {
    long long first_leaf;
    Py_ssize_t count;
    Py_buffer view;
} Span;

typedef struct {
    PyObject *images; /* from PySequence_Fast: a list or tuple */
    Span *spans;
    Py_ssize_t span_count;
    Span inline_spans[4];
} Sources;

static void
release_sources(Sources *sources)
{
    for (Py_ssize_t k = 0; k < sources->span_count; k++) {
        PyBuffer_Release(&sources->spans[k].view);
    }
    if (sources->spans != sources->inline_spans) {
        PyMem_Free(sources->spans);
    }
    sources->spans = sources->inline_spans;
    sources->span_count = 0;
    Py_CLEAR(sources->images);
}

/*
 * Take each span's buffer and a reference to images. release_sources
 * undoes both, and runs here too after a failure. Each span item is
 * referenced while it is read, because from Python 3.12 a class may
 * implement the buffer protocol in Python and change the spans list.
 */
static int
open_sources(PyObject *spans, PyObject *images, Sources *sources)
{
    PyObject *span_list;
    Py_ssize_t total;

    sources->images = NULL;
    sources->spans = sources->inline_spans;
    sources->span_count = 0;

    span_list = PySequence_Fast(spans, "spans must be a list or tuple");
    if (span_list == NULL) {
        return -1;
    }
    total = PySequence_Fast_GET_SIZE(span_list);
    if (total > (Py_ssize_t)Py_ARRAY_LENGTH(sources->inline_spans)) {
        sources->spans = PyMem_Calloc((size_t)total, sizeof(Span));
        if (sources->spans == NULL) {
            sources->spans = sources->inline_spans;
            Py_DECREF(span_list);
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t k = 0; k < total && k < PySequence_Fast_GET_SIZE(span_list);
         k++) {
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(span_list, k));
        Span *span = &sources->spans[k];
        PyObject *first_leaf;

        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "spans[%zd] must be a (first_leaf, leaf hashes)"
                         " tuple, not %.100s",
                         k, Py_TYPE(item)->tp_name);
            Py_DECREF(item);
            goto error;
        }
        /* An exact int check keeps __index__, which is Python code, out. */
        first_leaf = PyTuple_GET_ITEM(item, 0);
        if (!PyLong_Check(first_leaf)) {
            PyErr_Format(PyExc_TypeError,
                         "spans[%zd] first_leaf must be an int, not %.100s",
                         k, Py_TYPE(first_leaf)->tp_name);
            Py_DECREF(item);
            goto error;
        }
        span->first_leaf = PyLong_AsLongLong(first_leaf);
        if (span->first_leaf == -1 && PyErr_Occurred()) {
            Py_DECREF(item);
            goto error;
        }
        if (span->first_leaf < 0) {
            PyErr_Format(PyExc_ValueError,
                         "spans[%zd] starts at leaf %lld; first_leaf must"
                         " be >= 0",
                         k, span->first_leaf);
            Py_DECREF(item);
            goto error;
        }
        if (get_hash_buffer(PyTuple_GET_ITEM(item, 1), &span->view, "spans",
                            k) < 0) {
            Py_DECREF(item);
            goto error;
        }
        Py_DECREF(item);
        span->count = span->view.len / HASH_SIZE;
        sources->span_count = k + 1;
    }
    Py_DECREF(span_list);

    sources->images = PySequence_Fast(images, "images must be a list or tuple");
    if (sources->images == NULL) {
        release_sources(sources);
        return -1;
    }
    return 0;

error:
    Py_DECREF(span_list);
    release_sources(sources);
    return -1;
}

/* Copy stored hash (level, index) of an image into out. */
static int
read_image(Sources *sources, int level, uint64_t index, unsigned char *out)
{
    PyObject *image = NULL;
    Py_buffer view;
    Py_ssize_t count;

    if (level < PySequence_Fast_GET_SIZE(sources->images)) {
        image = PySequence_Fast_GET_ITEM(sources->images, level);
    }
    if (image == NULL || image == Py_None) {
        PyErr_Format(PyExc_ValueError,
                     "stored hash (%d, %llu) is missing: images[%d] is"
                     " absent; pass every level's image up to the tree's"
                     " highest level",
                     level, (unsigned long long)index, level);
        return -1;
    }
    /* view.obj references the image until PyBuffer_Release, so a change
     * to the images list cannot free it while it is read. */
    if (get_hash_buffer(image, &view, "images", level) < 0) {
        return -1;
    }
    count = view.len / HASH_SIZE;
    if ((uint64_t)count <= index) {
        PyErr_Format(PyExc_ValueError,
                     "stored hash (%d, %llu) is missing: images[%d] contains"
                     " only %zd hashes; grow the image to the tree_size"
                     " first",
                     level, (unsigned long long)index, level, count);
        PyBuffer_Release(&view);
        return -1;
    }
    memcpy(out, (const unsigned char *)view.buf + index * HASH_SIZE, HASH_SIZE);
    PyBuffer_Release(&view);
    return 0;
}

/* Hash stored hash (level, index) up from the span that contains its leaves. */
static int
read_span(Sources *sources, int level, uint64_t index, unsigned char *out)
{
    uint64_t first = index << level;
    uint64_t end = first + ((uint64_t)1 << level);

    for (Py_ssize_t k = 0; k < sources->span_count; k++) {
        const Span *span = &sources->spans[k];
        uint64_t span_first = (uint64_t)span->first_leaf;

        if (span_first <= first && end <= span_first + (uint64_t)span->count) {
            const unsigned char *leaves = (const unsigned char *)span->view.buf
                                          + (first - span_first) * HASH_SIZE;
            hash_subtree(leaves, level, out);
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError,
                 "stored hash (%d, %llu) is missing: no span contains its"
                 " leaves [%llu, %llu); pass the block of leaf hashes"
                 " around them",
                 level, (unsigned long long)index, (unsigned long long)first,
                 (unsigned long long)end);
    return -1;
}

static int
read_stored(Sources *sources, int level, uint64_t index, unsigned char *out)
{
    if (level >= MIN_IMAGE_LEVEL) {
        return read_image(sources, level, index, out);
    }
    return read_span(sources, level, index, out);
}

/* ---------------------------------------------------------------------
 * Proof plans: the stored hashes a proof reads, in the order of proof.py.
 */

typedef struct {
    int level;
    uint64_t index;
} NodeId;

typedef struct {
    NodeId ids[MAX_PATH_IDS];
    int count;
    int inner; /* ids[:inner]: siblings of the node up to the fork */
    int right; /* ids[inner:inner + right]: subtrees right of the fork */
} PathPlan;

static void
plan_push(PathPlan *plan, int level, uint64_t index)
{
    plan->ids[plan->count].level = level;
    plan->ids[plan->count].index = index;
    plan->count++;
}

/*
 * Plan the audit path of stored hash (level, index) in a tree of
 * tree_size leaves, as _path_ids in proof.py does. The fork is the
 * highest ancestor that is a complete subtree. The plan lists the
 * siblings up to the fork, then the subtrees right of the fork largest
 * first, then the subtrees left of it nearest first. It starts at
 * plan->count, so a caller may put ids before it.
 * Requires (index + 1) * 2**level <= tree_size < 2**63.
 */
static void
plan_path(int level, uint64_t index, uint64_t tree_size, PathPlan *plan)
{
    int inner = bit_length(index ^ (tree_size >> level)) - 1;
    int fork_level = level + inner;
    int start = plan->count;
    uint64_t rest;
    uint64_t begin;

    for (int i = 0; i < inner; i++) {
        plan_push(plan, level + i, (index >> i) ^ 1);
    }

    /* The fork is a left child or the root, so the leaves right of it are
     * tree_size's bits below fork_level: one subtree per set bit. */
    rest = tree_size & (((uint64_t)1 << fork_level) - 1);
    while (rest) {
        int bit = bit_length(rest) - 1;
        plan_push(plan, bit, (tree_size >> bit) - 1);
        rest ^= (uint64_t)1 << bit;
    }
    plan->inner += inner;
    plan->right = plan->count - start - inner;

    /* The leaves left of the fork are one subtree per set bit of the
     * fork's first leaf index. */
    begin = (index >> inner) << fork_level;
    rest = begin;
    while (rest) {
        int bit = __builtin_ctzll(rest);
        plan_push(plan, bit, (begin >> bit) - 1);
        rest &= rest - 1;
    }
}

static int
read_into_bytes(Sources *sources, const NodeId *id, PyObject **out)
{
    PyObject *value = PyBytes_FromStringAndSize(NULL, HASH_SIZE);

    if (value == NULL) {
        return -1;
    }
    if (read_stored(sources, id->level, id->index,
                    (unsigned char *)PyBytes_AS_STRING(value)) < 0) {
        Py_DECREF(value);
        return -1;
    }
    *out = value;
    return 0;
}

/*
 * Read a planned proof and fold the subtrees right of the fork into one
 * element, as _build and fold_right in ledger.merkle do.
 */
static PyObject *
build_proof(Sources *sources, const PathPlan *plan)
{
    int folded = plan->right > 1 ? plan->right - 1 : 0;
    PyObject *proof = PyList_New(plan->count - folded);
    Py_ssize_t position = 0;

    if (proof == NULL) {
        return NULL;
    }
    for (int k = 0; k < plan->count; k++) {
        PyObject *value;

        if (k == plan->inner && plan->right > 1) {
            unsigned char hashes[MAX_LEVELS][HASH_SIZE];

            for (int j = 0; j < plan->right; j++) {
                if (read_stored(sources, plan->ids[k + j].level,
                                plan->ids[k + j].index, hashes[j]) < 0) {
                    goto error;
                }
            }
            for (int j = plan->right - 2; j >= 0; j--) {
                hash_node(hashes[j], hashes[plan->right - 1],
                          hashes[plan->right - 1]);
            }
            value = PyBytes_FromStringAndSize(
                (const char *)hashes[plan->right - 1], HASH_SIZE);
            if (value == NULL) {
                goto error;
            }
            k += plan->right - 1;
        }
        else if (read_into_bytes(sources, &plan->ids[k], &value) < 0) {
            goto error;
        }
        PyList_SET_ITEM(proof, position++, value);
    }
    return proof;

error:
    Py_DECREF(proof);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Module functions.
 */

PyDoc_STRVAR(leaf_hashes_doc,
"leaf_hashes(entries, /)\n--\n\n"
"Hash each entry of a list or tuple of bytes into its RFC 9162 leaf hash\n"
"and return the 32-byte hashes concatenated in order.");

typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
} Entry;

static void
hash_entries(const Entry *items, Py_ssize_t count, unsigned char *out)
{
    for (Py_ssize_t k = 0; k < count; k++) {
        hash_leaf(items[k].data, (size_t)items[k].size, out + k * HASH_SIZE);
    }
}

static PyObject *
native_leaf_hashes(PyObject *module, PyObject *entries)
{
    PyObject *snapshot;
    PyObject *result = NULL;
    Entry *items = NULL;
    Py_ssize_t count;
    Py_ssize_t total = 0;
    unsigned char *out;

    (void)module;
    /* A tuple copy of a list keeps every entry alive while the GIL is
     * released, even if another thread changes the list. */
    if (PyList_Check(entries)) {
        snapshot = PyList_AsTuple(entries);
        if (snapshot == NULL) {
            return NULL;
        }
    }
    else if (PyTuple_Check(entries)) {
        snapshot = Py_NewRef(entries);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "entries must be a list or tuple of bytes, not %.100s",
                     Py_TYPE(entries)->tp_name);
        return NULL;
    }

    count = PyTuple_GET_SIZE(snapshot);
    if (count > PY_SSIZE_T_MAX / HASH_SIZE) {
        PyErr_NoMemory();
        goto done;
    }
    items = PyMem_New(Entry, (size_t)(count ? count : 1));
    if (items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyTuple_GET_ITEM(snapshot, k);

        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError,
                         "entries[%zd] is %.100s; each entry must be bytes",
                         k, Py_TYPE(item)->tp_name);
            goto done;
        }
        items[k].data = (const unsigned char *)PyBytes_AS_STRING(item);
        items[k].size = PyBytes_GET_SIZE(item);
        if (total < GIL_MIN_BYTES) {
            total += items[k].size;
        }
    }

    result = PyBytes_FromStringAndSize(NULL, count * HASH_SIZE);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    if (total >= GIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        hash_entries(items, count, out);
        Py_END_ALLOW_THREADS
    }
    else {
        hash_entries(items, count, out);
    }

done:
    PyMem_Free(items);
    Py_DECREF(snapshot);
    return result;
}

PyDoc_STRVAR(parent_level_doc,
"parent_level(hashes, /)\n--\n\n"
"Hash each consecutive pair of the 32-byte hashes in a bytes-like object\n"
"into its RFC 9162 node hash and return them concatenated; an odd last\n"
"hash is dropped. Raises ValueError unless len(hashes) % 32 == 0.");

/* Hash the first 2 * parents hashes at in, pair by pair, into out. */
static void
hash_pairs(const unsigned char *in, Py_ssize_t parents, unsigned char *out)
{
    for (Py_ssize_t k = 0; k < parents; k++) {
        hash_node(in + 2 * k * HASH_SIZE, in + (2 * k + 1) * HASH_SIZE,
                  out + k * HASH_SIZE);
    }
}

static PyObject *
native_parent_level(PyObject *module, PyObject *hashes)
{
    Py_buffer view;
    PyObject *result;
    const unsigned char *in;
    unsigned char *out;
    Py_ssize_t parents;

    (void)module;
    if (get_hash_buffer(hashes, &view, "hashes", -1) < 0) {
        return NULL;
    }
    parents = view.len / HASH_SIZE / 2;
    result = PyBytes_FromStringAndSize(NULL, parents * HASH_SIZE);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    in = (const unsigned char *)view.buf;
    out = (unsigned char *)PyBytes_AS_STRING(result);
    if (view.len >= GIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        hash_pairs(in, parents, out);
        Py_END_ALLOW_THREADS
    }
    else {
        hash_pairs(in, parents, out);
    }
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(range_levels_doc,
"range_levels(begin, leaf_hashes, siblings, /)\n--\n\n"
"Compute every stored hash that appending the concatenated 32-byte\n"
"leaf_hashes at leaf begin completes, as stored_hashes_for_range does,\n"
"and return (level, first_index, concatenated hashes) per level, level 0\n"
"first. siblings[level] is stored hash (level, (begin >> level) - 1)\n"
"wherever the first new node of that level is a right child.");

/* One level of a range_levels result and the left sibling it hashes with. */
typedef struct {
    uint64_t first;
    Py_ssize_t count;
    PyObject *hashes;
    int has_sibling;
    unsigned char sibling[HASH_SIZE];
} LevelPlan;

/*
 * Copy siblings[level] into plan->sibling. begin_at_level is
 * begin >> level, the first new node of that level.
 */
static int
read_sibling(PyObject *siblings, int level, uint64_t begin_at_level,
             LevelPlan *plan)
{
    PyObject *item = NULL;
    Py_ssize_t length = PySequence_Length(siblings);
    Py_buffer view;

    if (length < 0) {
        return -1;
    }
    if (level < length) {
        item = PySequence_GetItem(siblings, level);
        if (item == NULL) {
            return -1;
        }
    }
    if (item == NULL || item == Py_None) {
        Py_XDECREF(item);
        PyErr_Format(PyExc_ValueError,
                     "siblings[%d] is missing: level %d needs stored hash"
                     " (%d, %llu), the left sibling of its first new node",
                     level, level, level,
                     (unsigned long long)(begin_at_level - 1));
        return -1;
    }
    if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(item);
        return -1;
    }
    if (view.len != HASH_SIZE) {
        PyErr_Format(PyExc_ValueError,
                     "siblings[%d] is %zd bytes; level %d needs stored hash"
                     " (%d, %llu), a 32-byte SHA-256 hash",
                     level, view.len, level, level,
                     (unsigned long long)(begin_at_level - 1));
        PyBuffer_Release(&view);
        Py_DECREF(item);
        return -1;
    }
    memcpy(plan->sibling, view.buf, HASH_SIZE);
    plan->has_sibling = 1;
    PyBuffer_Release(&view);
    Py_DECREF(item);
    return 0;
}

/* Hash the parents of one level into the next level's bytes. */
static void
hash_level(const unsigned char *in, const LevelPlan *below,
           const LevelPlan *above)
{
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(above->hashes);
    Py_ssize_t k = 0;

    if (below->has_sibling) {
        /* The first parent's left child is the stored sibling, so the
         * pairs of this level start one hash later. */
        hash_node(below->sibling, in, out);
        in += HASH_SIZE;
        k = 1;
    }
    for (; k < above->count; k++) {
        hash_node(in, in + HASH_SIZE, out + k * HASH_SIZE);
        in += 2 * HASH_SIZE;
    }
}

/* Hash every level above level 0, whose hashes are read from leaves. */
static void
hash_levels(const unsigned char *leaves, const LevelPlan *levels,
            int level_count)
{
    const unsigned char *in = leaves;

    for (int level = 0; level + 1 < level_count; level++) {
        hash_level(in, &levels[level], &levels[level + 1]);
        in = (const unsigned char *)PyBytes_AS_STRING(levels[level + 1].hashes);
    }
}

static PyObject *
native_range_levels(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    LevelPlan levels[MAX_LEVELS];
    int level_count = 0;
    IntArg begin_arg;
    Py_buffer view;
    PyObject *result = NULL;
    uint64_t begin;
    uint64_t end;
    uint64_t first;
    Py_ssize_t count;
    Py_ssize_t hashed_bytes = 0;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "range_levels() takes 3 positional arguments, %zd given",
                     nargs);
        return NULL;
    }
    if (parse_int(args[0], &begin_arg) < 0) {
        return NULL;
    }
    if (begin_arg.overflow < 0 || (!begin_arg.overflow && begin_arg.value < 0)) {
        PyErr_Format(module_state(module)->range_error,
                     "leaf_index %S is negative", args[0]);
        return NULL;
    }
    if (begin_arg.overflow > 0) {
        return raise_too_large(module, "leaf_index", args[0]);
    }
    if (get_hash_buffer(args[1], &view, "leaf_hashes", -1) < 0) {
        return NULL;
    }
    count = view.len / HASH_SIZE;
    if (count == 0) {
        PyBuffer_Release(&view);
        return PyList_New(0);
    }
    begin = (uint64_t)begin_arg.value;
    if ((uint64_t)count > (uint64_t)LLONG_MAX - begin) {
        PyBuffer_Release(&view);
        return raise_too_large(module, "leaf_index", args[0]);
    }
    end = begin + (uint64_t)count;

    /* 1. Level 0 is the leaf hashes themselves. */
    memset(levels, 0, sizeof(levels));
    levels[0].first = begin;
    levels[0].count = count;
    if (PyBytes_CheckExact(args[1])) {
        levels[0].hashes = Py_NewRef(args[1]);
    }
    else {
        levels[0].hashes = PyBytes_FromStringAndSize(view.buf, view.len);
        if (levels[0].hashes == NULL) {
            goto done;
        }
    }
    level_count = 1;

    /* 2. Plan each level that gains parents, as stored_hashes_for_range
     *    does: the new nodes of level l are [begin >> l, end >> l), and a
     *    first new node that is a right child pairs with a stored left
     *    sibling. Take each sibling and allocate each level's bytes. */
    first = begin;
    for (int level = 0; (end >> (level + 1)) > (first >> 1); level++) {
        LevelPlan *below = &levels[level];
        LevelPlan *above = &levels[level + 1];
        Py_ssize_t available = below->count;

        if (first & 1) {
            if (read_sibling(args[2], level, first, below) < 0) {
                goto done;
            }
            first -= 1;
            available += 1;
        }
        first >>= 1;
        above->first = first;
        above->count = available / 2;
        above->hashes = PyBytes_FromStringAndSize(NULL, above->count * HASH_SIZE);
        if (above->hashes == NULL) {
            goto done;
        }
        level_count = level + 2;
        hashed_bytes += above->count * NODE_INPUT_SIZE;
    }

    /* 3. Hash level by level. Level 0 is read from the caller's buffer. */
    if (hashed_bytes >= GIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        hash_levels(view.buf, levels, level_count);
        Py_END_ALLOW_THREADS
    }
    else {
        hash_levels(view.buf, levels, level_count);
    }

    /* 4. Return one (level, first_index, hashes) tuple per level. */
    result = PyList_New(level_count);
    if (result == NULL) {
        goto done;
    }
    for (int level = 0; level < level_count; level++) {
        PyObject *item = Py_BuildValue("(iKO)", level,
                                       (unsigned long long)levels[level].first,
                                       levels[level].hashes);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, level, item);
    }

done:
    for (int level = 0; level < MAX_LEVELS; level++) {
        Py_XDECREF(levels[level].hashes);
    }
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(inclusion_proof_doc,
"inclusion_proof(leaf_index, tree_size, spans, images, /)\n--\n\n"
"Build the RFC 9162 inclusion proof of leaf_index in a tree of tree_size,\n"
"as ledger.merkle.inclusion_proof does, from stored hashes in images and\n"
"spans. Requires 0 <= leaf_index < tree_size < 2**63.");

static PyObject *
native_inclusion_proof(PyObject *module, PyObject *const *args,
                       Py_ssize_t nargs)
{
    IntArg leaf_index;
    IntArg tree_size;
    int below_zero;
    int below_size;
    PathPlan plan;
    Sources sources;
    PyObject *proof;

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "inclusion_proof() takes 4 positional arguments,"
                     " %zd given",
                     nargs);
        return NULL;
    }
    if (parse_int(args[0], &leaf_index) < 0 || parse_int(args[1], &tree_size) < 0) {
        return NULL;
    }
    if (compare_ints(&leaf_index, &ZERO, &below_zero) < 0
        || compare_ints(&leaf_index, &tree_size, &below_size) < 0) {
        return NULL;
    }
    if (below_zero < 0 || below_size >= 0) {
        PyErr_Format(module_state(module)->range_error,
                     "leaf_index %S is out of range for tree_size %S; it"
                     " must satisfy 0 <= leaf_index < tree_size",
                     args[0], args[1]);
        return NULL;
    }
    if (tree_size.overflow) {
        return raise_too_large(module, "tree_size", args[1]);
    }

    plan.count = 0;
    plan.inner = 0;
    plan_path(0, (uint64_t)leaf_index.value, (uint64_t)tree_size.value, &plan);
    if (plan.count == 0) {
        return PyList_New(0);
    }
    if (open_sources(args[2], args[3], &sources) < 0) {
        return NULL;
    }
    proof = build_proof(&sources, &plan);
    release_sources(&sources);
    return proof;
}

PyDoc_STRVAR(consistency_proof_doc,
"consistency_proof(size1, size2, spans, images, /)\n--\n\n"
"Build the RFC 9162 consistency proof between trees of size1 and size2,\n"
"as ledger.merkle.consistency_proof does, from stored hashes in images\n"
"and spans. Requires 0 < size1 <= size2 < 2**63, or size1 == size2.");

static PyObject *
native_consistency_proof(PyObject *module, PyObject *const *args,
                         Py_ssize_t nargs)
{
    IntArg size1;
    IntArg size2;
    int sign1;
    int order;
    int level;
    uint64_t index;
    PathPlan plan;
    Sources sources;
    PyObject *proof;

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "consistency_proof() takes 4 positional arguments,"
                     " %zd given",
                     nargs);
        return NULL;
    }
    if (parse_int(args[0], &size1) < 0 || parse_int(args[1], &size2) < 0) {
        return NULL;
    }
    if (compare_ints(&size1, &ZERO, &sign1) < 0
        || compare_ints(&size1, &size2, &order) < 0) {
        return NULL;
    }
    if (sign1 < 0 || order > 0) {
        PyErr_Format(module_state(module)->range_error,
                     "sizes %S and %S are out of range; they must satisfy"
                     " 0 < size1 <= size2",
                     args[0], args[1]);
        return NULL;
    }
    if (order == 0) {
        return PyList_New(0);
    }
    if (sign1 == 0) {
        PyErr_Format(module_state(module)->range_error,
                     "no consistency proof exists from size 0 to %S: RFC 9162"
                     " defines one only for 0 < size1; every tree extends the"
                     " empty tree",
                     args[1]);
        return NULL;
    }
    if (size2.overflow) {
        return raise_too_large(module, "size2", args[1]);
    }

    /* The proof is the audit path, in the tree of size2, of the largest
     * complete subtree that ends at size1. That subtree's own hash comes
     * first unless size1 is a power of two, because the verifier then has
     * it as root1. */
    level = __builtin_ctzll((uint64_t)size1.value);
    index = ((uint64_t)size1.value - 1) >> level;
    plan.count = 0;
    plan.inner = 0;
    if (index) {
        plan_push(&plan, level, index);
        plan.inner = 1;
    }
    plan_path(level, index, (uint64_t)size2.value, &plan);
    if (open_sources(args[2], args[3], &sources) < 0) {
        return NULL;
    }
    proof = build_proof(&sources, &plan);
    release_sources(&sources);
    return proof;
}

PyDoc_STRVAR(root_hash_doc,
"root_hash(tree_size, spans, images, /)\n--\n\n"
"Compute the RFC 9162 root hash of the tree of tree_size, as\n"
"ledger.merkle.root_hash does, from stored hashes in images and spans.\n"
"Requires 0 <= tree_size < 2**63.");

static PyObject *
native_root_hash(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    IntArg tree_size;
    PathPlan plan;
    Sources sources;
    PyObject *proof;
    PyObject *root;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "root_hash() takes 3 positional arguments, %zd given",
                     nargs);
        return NULL;
    }
    if (parse_int(args[0], &tree_size) < 0) {
        return NULL;
    }
    if (tree_size.overflow < 0 || (!tree_size.overflow && tree_size.value < 0)) {
        PyErr_Format(module_state(module)->range_error,
                     "tree_size %S is negative", args[0]);
        return NULL;
    }
    if (tree_size.overflow) {
        return raise_too_large(module, "tree_size", args[0]);
    }
    if (tree_size.value == 0) {
        unsigned char empty[HASH_SIZE];
        SHA256_CTX ctx;

        SHA256_Init(&ctx);
        SHA256_Final(empty, &ctx);
        return PyBytes_FromStringAndSize((const char *)empty, HASH_SIZE);
    }

    /* The root is the fold of one complete subtree per set bit of
     * tree_size, largest first, which build_proof folds as the subtrees
     * right of a fork at the root. */
    plan.count = 0;
    plan.inner = 0;
    for (int level = bit_length((uint64_t)tree_size.value) - 1; level >= 0; level--) {
        if (((uint64_t)tree_size.value >> level) & 1) {
            plan_push(&plan, level, ((uint64_t)tree_size.value >> level) - 1);
        }
    }
    plan.right = plan.count;
    if (open_sources(args[1], args[2], &sources) < 0) {
        return NULL;
    }
    proof = build_proof(&sources, &plan);
    release_sources(&sources);
    if (proof == NULL) {
        return NULL;
    }
    root = Py_NewRef(PyList_GET_ITEM(proof, 0));
    Py_DECREF(proof);
    return root;
}

/* ---------------------------------------------------------------------
 * Module definition.
 */

static PyMethodDef native_methods[] = {
    {"leaf_hashes", (PyCFunction)native_leaf_hashes, METH_O, leaf_hashes_doc},
    {"parent_level", (PyCFunction)native_parent_level, METH_O, parent_level_doc},
    {"range_levels", (PyCFunction)(void (*)(void))native_range_levels,
     METH_FASTCALL, range_levels_doc},
    {"inclusion_proof", (PyCFunction)(void (*)(void))native_inclusion_proof,
     METH_FASTCALL, inclusion_proof_doc},
    {"consistency_proof", (PyCFunction)(void (*)(void))native_consistency_proof,
     METH_FASTCALL, consistency_proof_doc},
    {"root_hash", (PyCFunction)(void (*)(void))native_root_hash,
     METH_FASTCALL, root_hash_doc},
    {NULL, NULL, 0, NULL},
};

static int
native_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(module_state(module)->range_error);
    return 0;
}

static int
native_clear(PyObject *module)
{
    Py_CLEAR(module_state(module)->range_error);
    return 0;
}

static void
native_free(void *module)
{
    native_clear((PyObject *)module);
}

static int
native_exec(PyObject *module)
{
    ModuleState *state = module_state(module);

    state->range_error = PyErr_NewExceptionWithDoc(
        "ledger.merkle._native.RangeError",
        "A leaf index or tree size lies outside the tree it refers to.",
        PyExc_ValueError, NULL);
    if (state->range_error == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "RangeError", state->range_error) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "MIN_IMAGE_LEVEL", MIN_IMAGE_LEVEL) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
    {0, NULL},
};

PyDoc_STRVAR(native_doc,
"RFC 9162 Merkle tree hashing and proof building in C; callers use\n"
"ledger.merkle.native, which documents each function.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ledger.merkle._native",
    .m_doc = native_doc,
    .m_size = sizeof(ModuleState),
    .m_methods = native_methods,
    .m_slots = native_slots,
    .m_traverse = native_traverse,
    .m_clear = native_clear,
    .m_free = native_free,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
