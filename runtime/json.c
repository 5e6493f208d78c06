/* json.c - a small, strict JSON reader (RFC 8259) for safetensors headers.
 *
 * Strict because the header comes from a file that may be corrupt or
 * hostile: no comments, no trailing commas, no leading zeros, no control
 * characters or invalid UTF-8 in strings, no lone surrogates, no "\u0000"
 * (names become C strings), no duplicate object keys, nesting at most 64
 * deep.  Numbers keep their text; callers convert what they need exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    RtErr *e;
} Parser;

static bool fail(Parser *p, const char *what)
{
    return rt_fail(p->e, NULL, "%s at byte %zu", what, p->pos);
}

static void skip_ws(Parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static int peek(Parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool literal(Parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid literal");
    p->pos += n;
    return true;
}

static int hex4(Parser *p)
{
    if (p->len - p->pos < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    p->pos += 4;
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned long cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        k = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        k = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        k = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static bool parse_string(Parser *p, char **out)
{
    p->pos++; /* the opening quote */
    /* Decoded text is never longer than the source. */
    size_t start = p->pos;
    size_t end = start;
    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return fail(p, "unterminated string");
    char *o = rt_alloc(end - start + 1);
    if (!o)
        return fail(p, "out of memory");
    size_t k = 0;
    while (p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(o);
            return fail(p, "control character in string");
        }
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)p->s + p->pos, end - p->pos);
            if (!n) {
                free(o);
                return fail(p, "invalid UTF-8 in string");
            }
            memcpy(o + k, p->s + p->pos, n);
            k += n;
            p->pos += n;
            continue;
        }
        p->pos++;
        char esc = p->s[p->pos++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = esc ? strchr(from, esc) : NULL;
        if (hit) {
            o[k++] = to[hit - from];
            continue;
        }
        if (esc != 'u') {
            p->pos--;
            free(o);
            return fail(p, "invalid escape in string");
        }
        int cp = hex4(p);
        unsigned long u = (unsigned long)cp;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = -1;
            if (p->len - p->pos >= 2 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                p->pos += 2;
                lo = hex4(p);
            }
            if (lo < 0xDC00 || lo > 0xDFFF)
                cp = -1;
            else
                u = 0x10000 + (((unsigned long)cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = -1;
        }
        if (cp <= 0) {
            free(o);
            return fail(p, cp == 0 ? "\\u0000 in string" : "invalid \\u escape in string");
        }
        k += put_utf8(o + k, u);
    }
    p->pos++;
    o[k] = '\0';
    *out = o;
    return true;
}

static bool parse_number(Parser *p, JsonVal *v)
{
    size_t start = p->pos;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    } else {
        return fail(p, "invalid number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9'))
            return fail(p, "invalid number");
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9'))
            return fail(p, "invalid number");
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    v->kind = JSON_NUM;
    v->s = rt_strndup(p->s + start, p->pos - start);
    return v->s ? true : fail(p, "out of memory");
}

static bool parse_value(Parser *p, JsonVal *v, int depth);

/* Items of an array or members of an object, after the opening bracket. */
static bool parse_items(Parser *p, JsonVal *v, int depth, bool object)
{
    char close = object ? '}' : ']';
    int cap = 0;
    skip_ws(p);
    if (peek(p) == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            if (cap > (1 << 24))
                return fail(p, "too many items");
            JsonVal *ni = rt_realloc(v->item, (size_t)cap * sizeof *ni);
            if (!ni)
                return fail(p, "out of memory");
            v->item = ni;
            if (object) {
                char **nk = rt_realloc(v->key, (size_t)cap * sizeof *nk);
                if (!nk)
                    return fail(p, "out of memory");
                v->key = nk;
            }
        }
        JsonVal *it = &v->item[v->n];
        memset(it, 0, sizeof *it);
        skip_ws(p);
        if (object) {
            if (peek(p) != '"')
                return fail(p, "expected a string key");
            size_t at = p->pos;
            if (!parse_string(p, &v->key[v->n]))
                return false;
            for (int i = 0; i < v->n; i++)
                if (strcmp(v->key[i], v->key[v->n]) == 0) {
                    free(v->key[v->n]);
                    p->pos = at;
                    return fail(p, "duplicate key");
                }
            skip_ws(p);
            if (peek(p) != ':') {
                free(v->key[v->n]);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        /* Count the item now so the caller frees it even on failure. */
        v->n++;
        if (!parse_value(p, it, depth + 1))
            return false;
        skip_ws(p);
        int c = peek(p);
        p->pos++;
        if (c == close)
            return true;
        if (c != ',') {
            p->pos--;
            return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

static bool parse_value(Parser *p, JsonVal *v, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(p, "nesting too deep");
    skip_ws(p);
    switch (peek(p)) {
    case '{':
        p->pos++;
        v->kind = JSON_OBJ;
        return parse_items(p, v, depth, true);
    case '[':
        p->pos++;
        v->kind = JSON_ARR;
        return parse_items(p, v, depth, false);
    case '"':
        v->kind = JSON_STR;
        return parse_string(p, &v->s);
    case 't':
        v->kind = JSON_BOOL;
        v->b = true;
        return literal(p, "true");
    case 'f':
        v->kind = JSON_BOOL;
        return literal(p, "false");
    case 'n':
        v->kind = JSON_NULL;
        return literal(p, "null");
    case -1:
        return fail(p, "unexpected end of text");
    default:
        if (peek(p) == '-' || (peek(p) >= '0' && peek(p) <= '9'))
            return parse_number(p, v);
        return fail(p, "expected a value");
    }
}

bool rt_json_parse(JsonVal *v, const char *text, size_t len, RtErr *e)
{
    memset(v, 0, sizeof *v);
    Parser p = {text, len, 0, e};
    bool ok = parse_value(&p, v, 0);
    if (ok) {
        skip_ws(&p);
        if (p.pos != p.len)
            ok = fail(&p, "unexpected text after the value");
    }
    if (!ok)
        rt_json_free(v);
    return ok;
}

void rt_json_free(JsonVal *v)
{
    for (int i = 0; i < v->n; i++) {
        rt_json_free(&v->item[i]);
        if (v->key)
            free(v->key[i]);
    }
    free(v->item);
    free(v->key);
    free(v->s);
    memset(v, 0, sizeof *v);
}

const JsonVal *rt_json_get(const JsonVal *obj, const char *key)
{
    if (obj->kind != JSON_OBJ)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->key[i], key) == 0)
            return &obj->item[i];
    return NULL;
}

bool rt_json_u64(const JsonVal *v, uint64_t *out)
{
    if (v->kind != JSON_NUM || v->s[0] == '-')
        return false;
    uint64_t x = 0;
    for (const char *c = v->s; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        if (x > (UINT64_MAX >> 1) / 10)
            return false;
        x = x * 10 + (uint64_t)(*c - '0');
    }
    if (x > (UINT64_MAX >> 1))
        return false;
    *out = x;
    return true;
}
