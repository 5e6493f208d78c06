/* safetensors.c - the checkpoint and weights format.
 *
 * Layout: an 8-byte little-endian header length L, L bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]},
 *    ..., "__metadata__": {"key": "string value", ...}}
 * then the data; offsets are bytes from the end of the header.  The reader
 * checks everything a corrupt or foreign file could get wrong: the length
 * against the file size, the JSON (strictly, json.c), every field of every
 * entry, the dtype, that END - BEGIN matches the shape, and that the
 * tensors tile the data exactly (no overlap, no gap, no bytes left over).  Errors name the file and
 * the tensor.  The writer pads the header with spaces to a multiple of 8
 * bytes (so the data is aligned) and writes through RtAtomic.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* Header lengths past this are corruption, not checkpoints (the reference
 * implementation uses the same bound). */
#define MAX_HEADER (100u * 1000 * 1000)

static const struct {
    const char *name;
    int size;
} dtypes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8},
    {"U64", 8},
};

static int dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return dtypes[i].size;
    return 0;
}

static bool entry(StFile *f, const char *path, const char *name, const JsonVal *v, RtErr *e)
{
    StTensor *t = &f->t[f->n];
    memset(t, 0, sizeof *t);
    if (v->kind != JSON_OBJ)
        return rt_fail(e, path, "tensor '%s': header entry is not an object", name);
    const JsonVal *dt = rt_json_get(v, "dtype"), *sh = rt_json_get(v, "shape"),
                  *off = rt_json_get(v, "data_offsets");
    if (!dt || !sh || !off || v->n != 3)
        return rt_fail(e, path, "tensor '%s': header entry must have exactly 'dtype', 'shape' "
                       "and 'data_offsets'", name);
    if (dt->kind != JSON_STR || !dtype_size(dt->s))
        return rt_fail(e, path, "tensor '%s': unknown dtype %s%s%s", name,
                       dt->kind == JSON_STR ? "'" : "", dt->kind == JSON_STR ? dt->s : "(not a string)",
                       dt->kind == JSON_STR ? "'" : "");
    if (sh->kind != JSON_ARR || sh->n > RT_MAX_RANK)
        return rt_fail(e, path, "tensor '%s': 'shape' must be an array of at most %d integers",
                       name, RT_MAX_RANK);
    uint64_t begin, end;
    if (off->kind != JSON_ARR || off->n != 2 || !rt_json_u64(&off->item[0], &begin) ||
        !rt_json_u64(&off->item[1], &end))
        return rt_fail(e, path, "tensor '%s': 'data_offsets' must be [BEGIN, END]", name);
    size_t bytes = (size_t)dtype_size(dt->s);
    t->rank = sh->n;
    for (int i = 0; i < sh->n; i++) {
        uint64_t d;
        if (!rt_json_u64(&sh->item[i], &d) || d > (1u << 31) ||
            !rt_mul_ok(bytes, (size_t)d, &bytes))
            return rt_fail(e, path, "tensor '%s': bad dimension in 'shape'", name);
        t->shape[i] = (long)d;
    }
    if (begin > end || end > f->data_len)
        return rt_fail(e, path, "tensor '%s': data_offsets [%llu, %llu] out of range (%zu data "
                       "bytes)", name, (unsigned long long)begin, (unsigned long long)end,
                       f->data_len);
    if (end - begin != bytes)
        return rt_fail(e, path, "tensor '%s': data_offsets span %llu bytes, its shape and dtype "
                       "need %zu", name, (unsigned long long)(end - begin), bytes);
    t->name = rt_strdup(name);
    if (!t->name)
        return rt_fail(e, path, "out of memory");
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->s);
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    f->n++;
    return true;
}

static bool metadata(StFile *f, const char *path, const JsonVal *v, RtErr *e)
{
    if (v->kind != JSON_OBJ)
        return rt_fail(e, path, "'__metadata__' is not an object");
    f->meta_key = rt_calloc((size_t)v->n + 1, sizeof *f->meta_key);
    f->meta_val = rt_calloc((size_t)v->n + 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val)
        return rt_fail(e, path, "out of memory");
    for (int i = 0; i < v->n; i++) {
        if (v->item[i].kind != JSON_STR)
            return rt_fail(e, path, "'__metadata__' value of '%s' is not a string", v->key[i]);
        f->meta_key[i] = rt_strdup(v->key[i]);
        f->meta_val[i] = rt_strdup(v->item[i].s);
        f->nmeta++;
        if (!f->meta_key[i] || !f->meta_val[i])
            return rt_fail(e, path, "out of memory");
    }
    return true;
}

static int cmp_offsets(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

/* As the format requires (and the reference implementation checks): the
 * tensors, sorted by offset, tile the data section exactly, with no
 * overlap, no gap and nothing after the last.  A header length that is off
 * by a byte moves the data section and fails here, instead of every tensor
 * being read a byte off. */
static bool check_layout(StFile *f, const char *path, RtErr *e)
{
    StTensor **by = rt_calloc((size_t)f->n + 1, sizeof *by);
    if (!by)
        return rt_fail(e, path, "out of memory");
    for (int i = 0; i < f->n; i++)
        by[i] = &f->t[i];
    qsort(by, (size_t)f->n, sizeof *by, cmp_offsets);
    bool ok = true;
    size_t pos = 0;
    for (int i = 0; i < f->n && ok; i++) {
        if (by[i]->begin < pos)
            ok = rt_fail(e, path, "tensors '%s' and '%s' overlap in the data", by[i - 1]->name,
                         by[i]->name);
        else if (by[i]->begin > pos)
            ok = rt_fail(e, path, "data bytes %zu to %zu are covered by no tensor (tensor '%s' "
                         "starts at %zu)", pos, by[i]->begin, by[i]->name, by[i]->begin);
        pos = by[i]->end;
    }
    if (ok && pos != f->data_len)
        ok = rt_fail(e, path, "%zu data bytes after the last tensor are covered by none (the "
                     "tensors end at byte %zu of %zu; a wrong header length?)",
                     f->data_len - pos, pos, f->data_len);
    free(by);
    return ok;
}

bool rt_st_read(StFile *f, const char *path, RtErr *e)
{
    memset(f, 0, sizeof *f);
    size_t len;
    if (!rt_read_file(path, &f->file, &len, e))
        return false;
    const unsigned char *b = f->file;
    JsonVal root = {0};
    bool ok = false;
    if (len < 8) {
        rt_fail(e, path, "not a safetensors file: %zu bytes, too short for the header length",
                len);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > MAX_HEADER) {
        rt_fail(e, path, "not a safetensors file: header length %llu exceeds the limit of %u "
                "bytes", (unsigned long long)hlen, MAX_HEADER);
        goto out;
    }
    if (hlen > len - 8) {
        rt_fail(e, path, "not a safetensors file (or truncated): header length %llu exceeds "
                "the file size %zu", (unsigned long long)hlen, len);
        goto out;
    }
    if (hlen < 2) {
        rt_fail(e, path, "not a safetensors file: header length %llu", (unsigned long long)hlen);
        goto out;
    }
    f->data = b + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    if (!rt_json_parse(&root, (const char *)b + 8, (size_t)hlen, e)) {
        rt_fail_wrap(e, "malformed safetensors header");
        rt_fail_wrap(e, path);
        goto out;
    }
    if (root.kind != JSON_OBJ) {
        rt_fail(e, path, "malformed safetensors header: not a JSON object");
        goto out;
    }
    f->t = rt_calloc((size_t)root.n + 1, sizeof *f->t);
    if (!f->t) {
        rt_fail(e, path, "out of memory");
        goto out;
    }
    for (int i = 0; i < root.n; i++) {
        if (strcmp(root.key[i], "__metadata__") == 0 ? !metadata(f, path, &root.item[i], e)
                                                     : !entry(f, path, root.key[i], &root.item[i], e))
            goto out;
    }
    ok = check_layout(f, path, e);
out:
    rt_json_free(&root);
    if (!ok)
        rt_st_free(f);
    return ok;
}

void rt_st_free(StFile *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->t);
    free(f->meta_key);
    free(f->meta_val);
    free(f->file);
    memset(f, 0, sizeof *f);
}

const StTensor *rt_st_find(const StFile *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

const char *rt_st_meta(const StFile *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_key[i], key) == 0)
            return f->meta_val[i];
    return NULL;
}

/* ---- writing ---- */

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} Buf;

static void put(Buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = rt_realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void puts_(Buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_json_str(Buf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

bool rt_st_write(const char *path, const StOut *t, int n, const char *const *kv, int nmeta,
                 RtErr *e)
{
    Buf h = {0};
    char num[64];
    size_t off = 0;
    puts_(&h, "{");
    if (nmeta) {
        puts_(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i)
                puts_(&h, ",");
            put_json_str(&h, kv[2 * i]);
            puts_(&h, ":");
            put_json_str(&h, kv[2 * i + 1]);
        }
        puts_(&h, "}");
    }
    for (int i = 0; i < n; i++) {
        if (i || nmeta)
            puts_(&h, ",");
        put_json_str(&h, t[i].name);
        puts_(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        size_t numel = 1;
        for (int k = 0; k < t[i].rank; k++) {
            snprintf(num, sizeof num, "%s%ld", k ? "," : "", t[i].shape[k]);
            puts_(&h, num);
            numel *= (size_t)t[i].shape[k];
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * 4);
        puts_(&h, num);
        off += numel * 4;
    }
    puts_(&h, "}");
    while (!h.oom && (8 + h.n) % 8)
        puts_(&h, " ");
    if (h.oom) {
        free(h.s);
        return rt_fail(e, path, "out of memory");
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));

    RtAtomic at;
    if (!rt_atomic_open(&at, path, e)) {
        free(h.s);
        return false;
    }
    rt_atomic_write(&at, len8, 8);
    rt_atomic_write(&at, h.s, h.n);
    free(h.s);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int k = 0; k < t[i].rank; k++)
            numel *= (size_t)t[i].shape[k];
        /* F32 little-endian: the host order on every platform netc targets;
         * a big-endian host would need a byte swap here and in ckpt.c. */
        rt_atomic_write(&at, t[i].data, numel * 4);
    }
    return rt_atomic_commit(&at, e);
}
