/* test_meta.c - parsing the model description, and its errors. */
#include "rt_test.h"

static const char *lenet =
    "netc 1\n"
    "name lenet\n"
    "params 61706\n"
    "arena 1000 12345\n"
    "input image 3 1 28 28\n"
    "output logits 1 10\n"
    "param c1.weight 0 150 4 6 1 5 5 he_uniform 0 0 25 150\n"
    "param c1.bias 150 6 1 6 zero 0 0 25 150\n"
    "param c2.weight 156 2400 4 16 6 5 5 he_normal 0 0 150 400\n"
    "param c2.bias 2556 16 1 16 uniform -0.5 0.5 150 400\n"
    "param f1.weight 2572 48000 2 120 400 xavier_uniform 0 0 400 120\n"
    "param f1.bias 50572 120 1 120 zero 0 0 400 120\n"
    "param f2.weight 50692 10080 2 84 120 xavier_normal 0 0 120 84\n"
    "param f2.bias 60772 84 1 84 normal 0.5 0.01 120 84\n"
    "param f3.weight 60856 840 2 10 84 he_uniform 0 0 84 10\n"
    "param f3.bias 61696 10 1 10 zero 0 0 84 10\n"
    "train loss softmax_cross_entropy\n"
    "train target class 0\n"
    "train optimizer sgd 0.01 0.9 0.0005 1\n"
    "train batch 64\n"
    "train epochs 10\n"
    "train seed 18446744073709551615\n"
    "train data fashion_mnist /usr/share/datasets/fashion mnist\n"
    "end\n";

static void parses_lenet(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, lenet, &e), e);
    assert_string_equal(m.name, "lenet");
    assert_int_equal(m.params, 61706);
    assert_int_equal(m.arena_fixed, 1000);
    assert_int_equal(m.arena_per_n, 12345);
    assert_int_equal(m.ninput, 1);
    assert_string_equal(m.input[0].name, "image");
    assert_int_equal(m.input[0].rank, 3);
    assert_int_equal(m.input[0].numel, 784);
    assert_int_equal(m.output[0].numel, 10);
    assert_int_equal(m.nparam, 10);
    const RtParam *p = rt_meta_param(&m, "c2.weight");
    assert_non_null(p);
    assert_int_equal(p->offset, 156);
    assert_int_equal(p->t.numel, 2400);
    assert_int_equal(p->init, RT_INIT_HE_NORMAL);
    assert_int_equal(p->fan_in, 150);
    assert_int_equal(p->fan_out, 400);
    p = rt_meta_param(&m, "c2.bias");
    assert_true(p->a == -0.5 && p->b == 0.5);
    assert_true(m.has_train);
    assert_int_equal(m.loss, RT_LOSS_SOFTMAX_XENT);
    assert_int_equal(m.target_kind, RT_TARGET_CLASS);
    assert_int_equal(m.target.rank, 0);
    /* the first optimizer format: sgd LR MOMENTUM WEIGHT_DECAY NESTEROV */
    assert_int_equal(m.opt.kind, RT_OPT_SGD);
    assert_true(m.opt.lr == 0.01 && m.opt.momentum == 0.9 && m.opt.weight_decay == 0.0005);
    assert_true(m.opt.nesterov && m.opt.dampening == 0);
    assert_true(m.clip_norm == 0 && m.warmup == 0);
    assert_true(rt_meta_param(&m, "f1.bias")->lr_mult == 1.0f);
    assert_int_equal(m.batch, 64);
    assert_int_equal(m.epochs, 10);
    assert_true(m.seed == UINT64_MAX);
    assert_string_equal(m.data_kind, "fashion_mnist");
    assert_string_equal(m.data_path, "/usr/share/datasets/fashion mnist"); /* spaces kept */
    rt_meta_free(&m);
}

static void minimal_without_train(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, "netc 1\nname f\nparams 0\narena 0 0\ninput x 1 4\n"
                                "output y 1 4\nend", &e), e);
    assert_false(m.has_train);
    assert_int_equal(m.nparam, 0);
    rt_meta_free(&m);
}

/* State tensors: `state` records, parsed like params and flagged; the
 * `one` initialiser fills ones. */
static void state_records(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, "netc 1\nname b\nparams 9\narena 0 0\ninput x 2 4 5\n"
                                "output y 2 4 5\n"
                                "param bn.weight 0 4 1 4 one 0 0 4 4\n"
                                "state bn.running_var 4 4 1 4 one 0 0 0 0\n"
                                "state bn.num_batches_tracked 8 1 0 zero 0 0 0 0\nend", &e), e);
    assert_int_equal(m.nparam, 3);
    assert_false(rt_meta_param(&m, "bn.weight")->state);
    assert_true(rt_meta_param(&m, "bn.running_var")->state);
    assert_true(rt_meta_param(&m, "bn.num_batches_tracked")->state);
    assert_int_equal(rt_meta_param(&m, "bn.running_var")->init, RT_INIT_ONE);
    float p[9];
    rt_init_params(&m, p, 1);
    for (int i = 0; i < 8; i++)
        assert_true(p[i] == 1.0f);
    assert_true(p[8] == 0.0f);
    rt_meta_free(&m);
}

/* lenet with line `line` (1-based) replaced by `with` ("" deletes it). */
static char *edit(int line, const char *with)
{
    static char buf[4096];
    const char *p = lenet;
    size_t k = 0;
    for (int i = 1; *p; i++) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p) + 1;
        if (i == line) {
            if (*with)
                k += (size_t)sprintf(buf + k, "%s\n", with);
        } else {
            memcpy(buf + k, p, n);
            k += n;
        }
        p += n;
    }
    buf[k] = '\0';
    return buf;
}

static void expect_meta_error(const char *text, const char *needle)
{
    RtMeta m;
    RtErr e;
    if (rt_meta_parse(&m, text, &e))
        fail_msg("accepted:\n%s", text);
    expect_contains(e.msg, needle);
}

/* Every loss by name, an optional reduction, per-position class targets. */
static void losses(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    char text[4096];
    snprintf(text, sizeof text, "%s", edit(17, "train loss nll sum"));
    assert_ok(rt_meta_parse(&m, text, &e), e);
    assert_int_equal(m.loss, RT_LOSS_NLL);
    assert_true(m.loss_sum);
    rt_meta_free(&m);
    snprintf(text, sizeof text, "%s", edit(17, "train loss smooth_l1 mean"));
    assert_ok(rt_meta_parse(&m, text, &e), e);
    assert_int_equal(m.loss, RT_LOSS_SMOOTH_L1);
    assert_false(m.loss_sum);
    assert_string_equal(rt_loss_name(m.loss), "smooth_l1");
    rt_meta_free(&m);
    snprintf(text, sizeof text, "%s", edit(18, "train target class 2 28 28"));
    assert_ok(rt_meta_parse(&m, text, &e), e);
    assert_int_equal(m.target_kind, RT_TARGET_CLASS);
    assert_int_equal(m.target.rank, 2);
    rt_meta_free(&m);
}

/* The key=value optimizer format, clipping, warm-up and per-parameter
 * records. */
static void optimizer_records(void **state)
{
    (void)state;
    char text[4096];
    const char *lines = "train optimizer adamw lr=0.001 beta1=0.9 beta2=0.999 eps=1e-08 "
                        "weight_decay=0.01 amsgrad=1\ntrain clip_norm 2.5\ntrain warmup 3\n"
                        "train lr_mult c2.weight 0.1\ntrain freeze c1.weight\n"
                        "train freeze c1.bias\n";
    const char *at = strstr(lenet, "train optimizer");
    const char *after = strchr(at, '\n') + 1;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - lenet), lenet, lines, after);
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, text, &e), e);
    assert_int_equal(m.opt.kind, RT_OPT_ADAMW);
    assert_true(m.opt.lr == 0.001 && m.opt.beta2 == 0.999 && m.opt.eps == 1e-8);
    assert_true(m.opt.weight_decay == 0.01 && m.opt.amsgrad);
    assert_true(m.clip_norm == 2.5f);
    assert_int_equal(m.warmup, 3);
    assert_true(rt_meta_param(&m, "c2.weight")->lr_mult == 0.1f);
    assert_true(rt_meta_param(&m, "c1.weight")->frozen && rt_meta_param(&m, "c1.bias")->frozen);
    assert_false(rt_meta_param(&m, "c2.bias")->frozen);
    rt_meta_free(&m);
    snprintf(text, sizeof text, "%.*s%strain freeze c1.weight\n%s", (int)(at - lenet), lenet,
             lines, after);
    expect_meta_error(text, "a second lr_mult or freeze record for 'c1.weight'");
    snprintf(text, sizeof text, "%.*s%strain clip_norm 1\n%s", (int)(at - lenet), lenet, lines,
             after);
    expect_meta_error(text, "duplicate train record 'clip_norm'");
}

static void errors(void **state)
{
    (void)state;
    expect_meta_error("", "empty");
    expect_meta_error(edit(1, "netc 2"), "line 1: unsupported format version '2'");
    expect_meta_error(edit(1, "hello"), "line 1: expected 'netc 1', found 'hello'");
    expect_meta_error(edit(24, ""), "no 'end' line");
    expect_meta_error(edit(2, ""), "no 'name' record");
    expect_meta_error(edit(5, ""), "no 'input' record");
    expect_meta_error(edit(17, ""), "no 'train loss' record");
    expect_meta_error(edit(3, "name again"), "line 3: duplicate record 'name'");
    expect_meta_error(edit(3, "weights 3"), "line 3: unknown record 'weights'");
    expect_meta_error(edit(20, "train batch 0"), "line 20: expected a positive integer, found '0'");
    expect_meta_error(edit(20, "train batch  64"), "line 20: fields must be separated by one space");
    expect_meta_error(edit(21, "train shuffle 1"), "unknown train record 'shuffle'");
    expect_meta_error(edit(17, "train loss hinge"), "unknown loss 'hinge'");
    expect_meta_error(edit(19, "train optimizer adamax lr=0.1"), "unknown optimizer 'adamax'");
    expect_meta_error(edit(19, "train optimizer sgd 0.1 0.9 0 2"),
                      "nesterov: expected 0 or 1, found '2'");
    expect_meta_error(edit(19, "train optimizer sgd x 0.9 0 0"), "lr: expected a positive number");
    expect_meta_error(edit(19, "train optimizer sgd 0.1 0.9 0"), "expected 'train optimizer sgd LR");
    expect_meta_error(edit(19, "train optimizer adam lr=0.1 beta1=0.9 beta2=0.999 eps=1e-8 "
                               "weight_decay=0"), "missing optimizer setting 'amsgrad'");
    expect_meta_error(edit(19, "train optimizer adam lr=0.1 beta1=0.9 beta2=1 eps=1e-8 "
                               "weight_decay=0 amsgrad=0"), "beta2: expected a number in [0, 1)");
    expect_meta_error(edit(19, "train optimizer adam lr=0.1 lr=0.2"),
                      "optimizer setting given twice: 'lr'");
    expect_meta_error(edit(19, "train optimizer adam lr=0.1 momentum=0.9"),
                      "optimizer adam has no setting 'momentum'");
    expect_meta_error(edit(19, "train optimizer adam 0.1"), "expected NAME=VALUE, found '0.1'");
    expect_meta_error(edit(19, "train optimizer sgd lr=0.1 momentum=0 dampening=0 weight_decay=0 "
                               "nesterov=1"), "nesterov needs a momentum greater than 0");
    expect_meta_error(edit(21, "train clip_norm 0"), "expected 'train clip_norm X' with X > 0");
    expect_meta_error(edit(21, "train warmup -1"), "expected an integer, found '-1'");
    expect_meta_error(edit(21, "train freeze c9.weight"),
                      "no param record before this line names 'c9.weight'");
    expect_meta_error(edit(21, "train lr_mult c1.weight 0"), "expected a positive LR multiplier");
    expect_meta_error(edit(18, "train target onehot 2 10 10"), "a onehot target has rank 1");
    expect_meta_error(edit(17, "train loss mse none"), "unknown reduction (mean or sum)");
    expect_meta_error(edit(23, "train data cifar /x"), "unknown data kind 'cifar'");
    expect_meta_error(edit(7, "param c1.weight 0 151 4 6 1 5 5 he_uniform 0 0 25 150"),
                      "COUNT is not the product");
    expect_meta_error(edit(7, "param c1.weight 0 150 4 6 1 5 5 lecun 0 0 25 150"),
                      "unknown INIT 'lecun'");
    expect_meta_error(edit(7, "param c1.weight 0 150 4 6 1 5 5 he_uniform 0 0 0 150"),
                      "He initialisation needs FAN_IN > 0");
    expect_meta_error(edit(7, "param c1.weight 0 150 4 6 1 5 5 he_uniform 0 0 25"),
                      "missing field");
    expect_meta_error(edit(7, "param c1.weight 0 150 4 6 1 5 5 he_uniform 0 0 25 150 9"),
                      "unexpected field '9'");
    expect_meta_error(edit(8, "param c1.bias 140 6 1 6 zero 0 0 25 150"),
                      "params 'c1.weight' and 'c1.bias' overlap");
    expect_meta_error(edit(16, "param f3.bias 61700 10 1 10 zero 0 0 84 10"),
                      "param 'f3.bias' ends at 61710, past params 61706");
    expect_meta_error(edit(16, "param c1.bias 61696 10 1 10 zero 0 0 84 10"),
                      "duplicate param 'c1.bias'");
    expect_meta_error(edit(5, "input image 9 1 1 1 1 1 1 1 1 1"), "rank too large");
    char with_tail[4096];
    snprintf(with_tail, sizeof with_tail, "%sname x\n", lenet);
    expect_meta_error(with_tail, "text after 'end'");
}

/* The data source's files and options, augmentation and normalisation. */
static void data_records(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    const char *text = edit(23, "train data npy /d/x y.npy\ntrain datafile labels /d/l a.npy\n"
                                "train datafile test /d/t.npy\ntrain datafile test_labels /d/tl.npy\n"
                                "train dataopt channels 3\ntrain dataopt size 32\n"
                                "train dataopt label coarse\ntrain augment crop 4\n"
                                "train augment flip\ntrain normalize 2 0.5 0.25 0.2 0.1");
    assert_ok(rt_meta_parse(&m, text, &e), e);
    assert_string_equal(m.data_kind, "npy");
    assert_string_equal(m.data_path, "/d/x y.npy");
    assert_string_equal(m.data_labels, "/d/l a.npy");
    assert_string_equal(m.data_test, "/d/t.npy");
    assert_string_equal(m.data_test_labels, "/d/tl.npy");
    assert_int_equal(m.data_channels, 3);
    assert_int_equal(m.data_size, 32);
    assert_true(m.data_coarse);
    assert_int_equal(m.crop_pad, 4);
    assert_true(m.flip);
    assert_int_equal(m.nnorm, 2);
    assert_float_equal(m.mean[1], 0.25f, 0);
    assert_float_equal(m.std[0], 0.2f, 0);
    rt_meta_free(&m);
    expect_meta_error(edit(23, "train dataopt split 1"), "the split must be in (0, 1), found '1'");
    expect_meta_error(edit(23, "train dataopt split 0.2 x"), "expected 'train dataopt KEY VALUE'");
    expect_meta_error(edit(23, "train dataopt shuffle 1"), "unknown data option 'shuffle'");
    expect_meta_error(edit(23, "train dataopt label medium"), "expected coarse or fine, found");
    expect_meta_error(edit(23, "train datafile weights /w"), "unknown data file role 'weights'");
    expect_meta_error(edit(23, "train datafile test /a\ntrain datafile test /b"),
                      "duplicate data file 'test'");
    expect_meta_error(edit(23, "train augment crop 0"), "expected a positive integer, found '0'");
    expect_meta_error(edit(23, "train augment rotate 5"), "expected 'train augment crop PAD' or");
    expect_meta_error(edit(23, "train normalize 2 0.5 0.5 1"), "missing field after '1'");
    expect_meta_error(edit(23, "train normalize 1 0.5 0"), "a std must be positive, found '0'");
    expect_meta_error(edit(23, "train normalize 1 0.5 1 7"), "unexpected field '7'");
    expect_meta_error(edit(23, "train normalize 1 0 1\ntrain normalize 1 0 1"),
                      "duplicate train record 'normalize'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_lenet),
        cmocka_unit_test(minimal_without_train),
        cmocka_unit_test(losses),
        cmocka_unit_test(optimizer_records),
        cmocka_unit_test(state_records),
        cmocka_unit_test(errors),
        cmocka_unit_test(data_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
