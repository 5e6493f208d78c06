/* test_safetensors.c - the strict JSON reader and safetensors files:
 * round trips, malformed headers, and tensors that do not match. */
#include "rt_test.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpdir_remove(dir);
    return 0;
}

static void json_ok(const char *text)
{
    JsonVal v;
    RtErr e;
    if (!rt_json_parse(&v, text, strlen(text), &e))
        fail_msg("%s: %s", text, e.msg);
    rt_json_free(&v);
}

static void json_bad(const char *text, const char *needle)
{
    JsonVal v;
    RtErr e;
    if (rt_json_parse(&v, text, strlen(text), &e))
        fail_msg("accepted %s", text);
    expect_contains(e.msg, needle);
}

static void json_strict(void **state)
{
    (void)state;
    json_ok("{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}}  ");
    json_ok("[]");
    json_bad("{\"a\": 1,}", "expected a string key");
    json_bad("[1, 2,]", "expected a value at byte 6");
    json_bad("{\"a\": 1, \"a\": 2}", "duplicate key");
    json_bad("{\"a\": 01}", "expected ',' or '}'");
    json_bad("{\"a\": \"\\x\"}", "invalid escape");
    json_bad("{\"a\": \"\\ud800\"}", "invalid \\u escape");
    json_bad("{\"a\": \"\\u0000\"}", "\\u0000");
    json_bad("{\"a\": \"\xff\"}", "invalid UTF-8");
    json_bad("{\"a\": \"tab\there\"}", "control character");
    json_bad("{\"a\": tru}", "invalid literal");
    json_bad("{\"a\": 1} x", "unexpected text after");
    json_bad("{\"a\": \"open", "unterminated string");
    json_bad("// comment\n{}", "expected a value at byte 0");
    json_bad("{\"a\": -}", "invalid number");
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    json_bad(deep, "nesting too deep");

    JsonVal v;
    RtErr e;
    const char *t = "{\"n\": 9007199254740993, \"neg\": -1, \"f\": 1.5}";
    assert_true(rt_json_parse(&v, t, strlen(t), &e));
    uint64_t x;
    assert_true(rt_json_u64(rt_json_get(&v, "n"), &x));
    assert_true(x == 9007199254740993ULL); /* exact past 2^53 */
    assert_false(rt_json_u64(rt_json_get(&v, "neg"), &x));
    assert_false(rt_json_u64(rt_json_get(&v, "f"), &x));
    assert_null(rt_json_get(&v, "missing"));
    rt_json_free(&v);
}

static void round_trip(void **state)
{
    (void)state;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1, 0.25f};
    long sa[2] = {2, 3}, sb[1] = {2};
    StOut t[2] = {{"layer.weight", 2, sa, a}, {"layer.bias", 1, sb, b}};
    const char *kv[] = {"format", "pt", "note", "quote \" and \\ and \n"};
    const char *p = path_in(dir, "w.safetensors");
    RtErr e;
    assert_true(rt_st_write(p, t, 2, kv, 2, &e));
    assert_int_equal(tmpdir_count(dir), 1);

    StFile f;
    if (!rt_st_read(&f, p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(f.n, 2);
    /* The header is padded so the data is 8-byte aligned. */
    assert_int_equal((size_t)(f.data - f.file) % 8, 0);
    const StTensor *w = rt_st_find(&f, "layer.weight");
    assert_non_null(w);
    assert_string_equal(w->dtype, "F32");
    assert_int_equal(w->rank, 2);
    assert_int_equal(w->shape[1], 3);
    assert_memory_equal(f.data + w->begin, a, sizeof a);
    const StTensor *bb = rt_st_find(&f, "layer.bias");
    assert_memory_equal(f.data + bb->begin, b, sizeof b);
    assert_string_equal(rt_st_meta(&f, "note"), "quote \" and \\ and \n");
    assert_null(rt_st_find(&f, "nope"));
    rt_st_free(&f);
}

/* A file from a header text and `data` bytes of zeros; hlen overrides the
 * stored header length when non-zero. */
static void write_st(const char *path, const char *header, size_t data, uint64_t hlen)
{
    size_t n = strlen(header);
    unsigned char *buf = calloc(1, 8 + n + data);
    uint64_t l = hlen ? hlen : n;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(l >> (8 * i));
    memcpy(buf + 8, header, n);
    write_bytes(path, buf, 8 + n + data);
    free(buf);
}

static void expect_st_error(const char *path, const char *needle)
{
    StFile f;
    RtErr e;
    if (rt_st_read(&f, path, &e))
        fail_msg("accepted a file that should fail with \"%s\"", needle);
    expect_contains(e.msg, path);
    expect_contains(e.msg, needle);
}

static void malformed(void **state)
{
    (void)state;
    const char *p = path_in(dir, "bad.safetensors");
    expect_st_error(path_in(dir, "missing.safetensors"), "cannot open");
    write_bytes(p, "abc", 3);
    expect_st_error(p, "too short");
    write_st(p, "{}", 0, 1000);
    expect_st_error(p, "header length 1000 exceeds the file size");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},}", 8, 0);
    expect_st_error(p, "malformed safetensors header: expected a string key");
    write_st(p, "[1, 2]", 0, 0);
    expect_st_error(p, "not a JSON object");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 8, 0);
    expect_st_error(p, "tensor 'a': data_offsets [0, 16] out of range (8 data bytes)");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, 0);
    expect_st_error(p, "tensor 'a': data_offsets span 8 bytes, its shape and dtype need 12");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, 0);
    expect_st_error(p, "out of range");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
             12, 0);
    expect_st_error(p, "tensors 'a' and 'b' overlap");
    /* The tensors must tile the data: no gap, nothing left over. */
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
             12, 0);
    expect_st_error(p, "data bytes 4 to 8 are covered by no tensor (tensor 'b' starts at 8)");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, 0);
    expect_st_error(p, "data bytes 0 to 4 are covered by no tensor");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 5, 0);
    expect_st_error(p, "1 data bytes after the last tensor are covered by none");
    write_st(p, "{}", 0, 100000001);
    expect_st_error(p, "header length 100000001 exceeds the limit of 100000000 bytes");
    /* Zero-sized tensors take no bytes, wherever they sort. */
    write_st(p, "{\"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             4, 0);
    StFile zf;
    RtErr ze;
    assert_ok(rt_st_read(&zf, p, &ze), ze);
    rt_st_free(&zf);
    /* A header length one byte short moves the data section by one byte. */
    {
        float a[2] = {1, 2};
        long sa[1] = {2};
        StOut t[1] = {{"a", 1, sa, a}};
        RtErr e;
        assert_ok(rt_st_write(p, t, 1, NULL, 0, &e), e);
        size_t n;
        unsigned char *raw = read_bytes(p, &n);
        raw[0]--;
        write_bytes(p, raw, n);
        free(raw);
        expect_st_error(p, "1 data bytes after the last tensor are covered by none");
    }
    write_st(p, "{\"a\": {\"dtype\": \"F33\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, 0);
    expect_st_error(p, "tensor 'a': unknown dtype 'F33'");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, 0);
    expect_st_error(p, "must have exactly 'dtype', 'shape' and 'data_offsets'");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, 0);
    expect_st_error(p, "bad dimension");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, 0);
    expect_st_error(p, "'data_offsets' must be [BEGIN, END]");
    write_st(p, "{\"__metadata__\": {\"epoch\": 3}}", 0, 0);
    expect_st_error(p, "'__metadata__' value of 'epoch' is not a string");

    /* Wrong dtype for a known dtype is legal safetensors: the reader takes
     * it and the checkpoint loader rejects it (test_ckpt.c). */
    write_st(p, "{\"a\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}  ", 4, 0);
    StFile f;
    RtErr e;
    assert_true(rt_st_read(&f, p, &e));
    assert_string_equal(rt_st_find(&f, "a")->dtype, "F16");
    rt_st_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_strict),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
