/* image.c - image folders: one sub-folder per class, PNG and JPEG files.
 *
 * Needs: the headers of libpng and libjpeg(-turbo) at build time
 * (NETC_HAVE_PNG, NETC_HAVE_JPEG) and their shared libraries when images
 * are read: they are opened with dlopen on first use, so every program
 * links without them; when they are missing rt_images_load says how to
 * get them.
 * Provides rt_images_load.  DIR holds one folder per class; classes are
 * numbered in byte order of their names (hidden entries skipped), and a
 * test folder must hold the same class names as the training folder.
 * Files ending in .png, .jpg or .jpeg (any case) are decoded to the
 * model's channels (grey replicated to RGB, RGB to grey by the
 * libraries' own conversion, alpha composited onto black), resized to
 * the model's [H, W] with the bilinear rule of batch.c and stored as bytes
 * rounded to nearest.  Other files are skipped.  An empty class folder, a
 * corrupt or truncated image (libjpeg's warnings included) or an image
 * larger than MAX_PIXELS is an error naming the file; with skip_bad,
 * undecodable images are skipped and counted in d->skipped instead.
 *
 *   cats/a.png (40x30 RGB), model input [3, 32, 32] -> one [3, 32, 32]
 *   sample of class 0 ("cats" sorts before "dogs").
 */
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt.h"

#if defined(NETC_HAVE_PNG) && defined(NETC_HAVE_JPEG)
#include <dlfcn.h>
#include <jpeglib.h>
#include <png.h>
#define HAVE_IMAGES 1
#endif

/* Past this an image is a corrupt header or not a data set's image. */
#define MAX_PIXELS (1L << 26)

#ifdef HAVE_IMAGES
/* The library functions used, opened on first use so that programs link
 * without the image libraries and run without them unless asked for
 * images.  Their signatures are those of the headers compiled against. */
static struct {
    bool tried, ok;
    __typeof__(png_image_begin_read_from_file) *png_begin;
    __typeof__(png_image_finish_read) *png_finish;
    __typeof__(png_image_free) *png_free;
    __typeof__(jpeg_std_error) *std_error;
    __typeof__(jpeg_CreateDecompress) *create;
    __typeof__(jpeg_stdio_src) *stdio_src;
    __typeof__(jpeg_read_header) *read_header;
    __typeof__(jpeg_start_decompress) *start;
    __typeof__(jpeg_read_scanlines) *read_scanlines;
    __typeof__(jpeg_finish_decompress) *finish;
    __typeof__(jpeg_destroy_decompress) *destroy;
    char why[256];
} lib;

static void *open_first(const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
    }
    return NULL;
}

/* dlsym's object pointer into a function pointer, as POSIX allows. */
static bool sym(void *h, const char *name, void *fp, size_t size)
{
    void *p = h ? dlsym(h, name) : NULL;
    if (!p) {
        snprintf(lib.why, sizeof lib.why, "no symbol %s", name);
        return false;
    }
    memcpy(fp, &p, size);
    return true;
}

#define SYM(h, field, name) sym(h, name, &lib.field, sizeof lib.field)

static bool open_libs(void)
{
    if (lib.tried)
        return lib.ok;
    lib.tried = true;
    static const char *const png[] = {"libpng16.so.16", "libpng16.so", "libpng.so"};
    static const char *const jpeg[] = {"libjpeg.so.62", "libjpeg.so.8", "libjpeg.so"};
    void *hp = open_first(png, 3), *hj = open_first(jpeg, 3);
    if (!hp || !hj) {
        snprintf(lib.why, sizeof lib.why, "cannot load %s", !hp ? "libpng16.so.16"
                                                                  : "libjpeg.so.62");
        return false;
    }
    lib.ok = SYM(hp, png_begin, "png_image_begin_read_from_file") &&
             SYM(hp, png_finish, "png_image_finish_read") && SYM(hp, png_free, "png_image_free") &&
             SYM(hj, std_error, "jpeg_std_error") && SYM(hj, create, "jpeg_CreateDecompress") &&
             SYM(hj, stdio_src, "jpeg_stdio_src") && SYM(hj, read_header, "jpeg_read_header") &&
             SYM(hj, start, "jpeg_start_decompress") &&
             SYM(hj, read_scanlines, "jpeg_read_scanlines") &&
             SYM(hj, finish, "jpeg_finish_decompress") &&
             SYM(hj, destroy, "jpeg_destroy_decompress");
    return lib.ok;
}
#endif

bool rt_images_supported(void)
{
#ifdef HAVE_IMAGES
    return open_libs();
#else
    return false;
#endif
}

#ifdef HAVE_IMAGES

/* Sorted names of the entries of dir that are folders (want_dirs) or
 * image files; NULL with e filled on failure. */
typedef struct {
    char **name;
    int n;
} Names;

static void names_free(Names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->name[i]);
    free(l->name);
    memset(l, 0, sizeof *l);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_image(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char ext[8] = {0};
    for (int i = 0; i < 7 && dot[i + 1]; i++)
        ext[i] = (char)tolower((unsigned char)dot[i + 1]);
    return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

static bool list_dir(const char *dir, bool want_dirs, Names *out, RtErr *e)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return rt_fail(e, dir, "cannot open the folder: %s", strerror(errno));
    struct dirent *de;
    bool ok = true;
    int cap = 0;
    while (ok && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || (want_dirs ? !S_ISDIR(st.st_mode)
                                               : !S_ISREG(st.st_mode) || !is_image(de->d_name)))
            continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = rt_realloc(out->name, (size_t)cap * sizeof *nn);
            if (!nn) {
                ok = rt_fail(e, dir, "out of memory listing the folder");
                break;
            }
            out->name = nn;
        }
        if (!(out->name[out->n] = rt_strdup(de->d_name)))
            ok = rt_fail(e, dir, "out of memory listing the folder");
        else
            out->n++;
    }
    closedir(d);
    if (!ok) {
        names_free(out);
        return false;
    }
    if (out->n > 1)
        qsort(out->name, (size_t)out->n, sizeof *out->name, cmp_name);
    return true;
}

/* A decoded image: h x w pixels of c interleaved bytes. */
typedef struct {
    unsigned char *px;
    int h, w, c;
} Pixels;

static bool decode_png(const char *path, int c, Pixels *img, RtErr *e)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!lib.png_begin(&pi, path))
        return rt_fail(e, path, "corrupt PNG: %s", pi.message);
    if ((long)pi.width * pi.height > MAX_PIXELS || !pi.width || !pi.height) {
        lib.png_free(&pi);
        return rt_fail(e, path, "a %ux%u PNG: expected 1 to %ld pixels", pi.width, pi.height,
                       MAX_PIXELS);
    }
    pi.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    img->h = (int)pi.height;
    img->w = (int)pi.width;
    img->c = c;
    img->px = rt_alloc(PNG_IMAGE_SIZE(pi));
    if (!img->px) {
        lib.png_free(&pi);
        return rt_fail(e, path, "out of memory for a %dx%d image", img->w, img->h);
    }
    png_color black = {0, 0, 0};
    if (!lib.png_finish(&pi, &black, img->px, 0, NULL)) {
        free(img->px);
        img->px = NULL;
        return rt_fail(e, path, "corrupt PNG: %s", pi.message);
    }
    return true;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

/* Errors and warnings (a truncated file is only a warning to libjpeg)
 * both stop the decode: a half-grey image is not a sample. */
static void jpeg_fail(j_common_ptr cinfo)
{
    JpegErr *je = (JpegErr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jump, 1);
}

static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static bool decode_jpeg(const char *path, int c, Pixels *img, RtErr *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_fail(e, path, "cannot open: %s", strerror(errno));
    struct jpeg_decompress_struct ci;
    JpegErr je;
    ci.err = lib.std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_message;
    /* volatile: read after longjmp */
    unsigned char *volatile px = NULL;
    if (setjmp(je.jump)) {
        lib.destroy(&ci);
        fclose(f);
        free(px);
        return rt_fail(e, path, "corrupt JPEG: %s", je.msg);
    }
    lib.create(&ci, JPEG_LIB_VERSION, sizeof ci);
    lib.stdio_src(&ci, f);
    lib.read_header(&ci, TRUE);
    ci.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    lib.start(&ci);
    if ((long)ci.output_width * ci.output_height > MAX_PIXELS) {
        snprintf(je.msg, sizeof je.msg, "%ux%u pixels, more than %ld", ci.output_width,
                 ci.output_height, MAX_PIXELS);
        longjmp(je.jump, 1);
    }
    size_t row = (size_t)ci.output_width * (size_t)c;
    px = rt_alloc(row * ci.output_height);
    if (!px) {
        snprintf(je.msg, sizeof je.msg, "out of memory");
        longjmp(je.jump, 1);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW r = px + row * ci.output_scanline;
        lib.read_scanlines(&ci, &r, 1);
    }
    lib.finish(&ci);
    img->h = (int)ci.output_height;
    img->w = (int)ci.output_width;
    img->c = c;
    img->px = px;
    lib.destroy(&ci);
    fclose(f);
    return true;
}

static bool has_png_magic(const char *path)
{
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(head, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(head, "\x89PNG\r\n\x1a\n", 8);
}

/* Decodes path into [c, h, w] bytes at out, resized (scratch: floats). */
static bool load_image(const char *path, const RtView *v, unsigned char *out, RtErr *e)
{
    Pixels img = {0};
    const char *dot = strrchr(path, '.');
    bool png = dot && tolower((unsigned char)dot[1]) == 'p';
    if (png && !has_png_magic(path))
        return rt_fail(e, path, "not a PNG file (bad signature)");
    if (!(png ? decode_png(path, v->c, &img, e) : decode_jpeg(path, v->c, &img, e)))
        return false;
    size_t plane = (size_t)img.h * (size_t)img.w;
    float *src = rt_alloc(plane * sizeof *src), *dst = rt_alloc((size_t)v->h * v->w * sizeof *dst);
    bool ok = src && dst;
    for (int c = 0; ok && c < v->c; c++) {
        for (size_t k = 0; k < plane; k++)
            src[k] = img.px[k * (size_t)v->c + (size_t)c];
        rt_resize_bilinear(src, img.h, img.w, dst, v->h, v->w);
        for (long k = 0; k < (long)v->h * v->w; k++) {
            float x = dst[k] + 0.5f;
            out[(size_t)c * v->h * v->w + (size_t)k] = (unsigned char)(x > 255 ? 255 : x);
        }
    }
    free(src);
    free(dst);
    free(img.px);
    return ok ? true : rt_fail(e, path, "out of memory resizing the image");
}

/* The view the images are decoded to: the model's input as [c, h, w]. */
static bool model_view(const RtMeta *m, RtView *v, RtErr *e)
{
    const RtTensor *in = &m->input[0];
    if (in->rank == 3 && (in->d[0] == 1 || in->d[0] == 3))
        *v = (RtView){.c = (int)in->d[0], .h = (int)in->d[1], .w = (int)in->d[2]};
    else if (in->rank == 2)
        *v = (RtView){.c = 1, .h = (int)in->d[0], .w = (int)in->d[1]};
    else
        return rt_fail(e, NULL, "image folders feed an input of [1, H, W], [3, H, W] or [H, W]; "
                       "the model's input '%s' has rank %d", in->name, in->rank);
    return true;
}

/* The class folders of dir: the first call names the classes, later
 * calls (the test folder) must find the same names. */
static bool classes_of(RtData *d, const char *dir, Names *cls, RtErr *e)
{
    if (!list_dir(dir, true, cls, e))
        return false;
    if (cls->n != d->classes) {
        int n = cls->n;
        names_free(cls);
        return rt_fail(e, dir, "%d class folder%s; the model predicts %d classes", n,
                       n == 1 ? "" : "s", d->classes);
    }
    if (!d->class_name) {
        d->class_name = cls->name;
        cls->name = NULL;
        cls->n = 0;
        return true;
    }
    for (int i = 0; i < cls->n; i++)
        if (strcmp(cls->name[i], d->class_name[i]) != 0) {
            rt_fail(e, dir, "class folder '%s' is not a class of the training folder (class %d "
                    "there is '%s')", cls->name[i], i, d->class_name[i]);
            names_free(cls);
            return false;
        }
    names_free(cls);
    return true;
}

bool rt_images_load(RtSplit *s, RtData *d, const RtMeta *m, const char *dir, bool skip_bad,
                    RtErr *e)
{
    memset(s, 0, sizeof *s);
    if (!open_libs())
        return rt_fail(e, dir, "image folders need libpng and libjpeg: %s (install libpng16-16 "
                       "and libjpeg62-turbo)", lib.why);
    if (!dir)
        return rt_fail(e, NULL, "image data needs a test folder (test=\"DIR\") or split=");
    RtView v = {0};
    Names cls = {0};
    if (!model_view(m, &v, e) || !classes_of(d, dir, &cls, e))
        return false;
    /* Every class's files first, to size the storage once. */
    Names *files = rt_calloc((size_t)d->classes, sizeof *files);
    if (!files)
        return rt_fail(e, dir, "out of memory");
    long total = 0;
    bool ok = true;
    char path[8192];
    for (int k = 0; ok && k < d->classes; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, d->class_name[k]);
        ok = list_dir(path, false, &files[k], e);
        if (ok && files[k].n == 0)
            ok = rt_fail(e, path, "empty class folder: no .png, .jpg or .jpeg files");
        total += ok ? files[k].n : 0;
    }
    size_t per = (size_t)v.c * v.h * v.w;
    *s = (RtSplit){.c = v.c, .h = v.h, .w = v.w, .pixels = (long)per};
    if (ok && (!(s->own = rt_calloc((size_t)total, per)) ||
               !(s->own_y = rt_alloc(((size_t)total + 1) * sizeof(uint16_t)))))
        ok = rt_fail(e, dir, "out of memory for %ld images", total);
    unsigned char *x = s->own;
    uint16_t *y = s->own_y;
    for (int k = 0; ok && k < d->classes; k++)
        for (int i = 0; ok && i < files[k].n; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, d->class_name[k], files[k].name[i]);
            RtErr bad;
            if (load_image(path, &v, x + (size_t)s->n * per, &bad)) {
                y[s->n++] = (uint16_t)k;
            } else if (skip_bad) {
                d->skipped++;
            } else {
                *e = bad;
                ok = false;
            }
        }
    for (int k = 0; k < d->classes; k++)
        names_free(&files[k]);
    free(files);
    s->x8 = s->own;
    s->y = s->own_y;
    if (ok && s->n == 0)
        ok = rt_fail(e, dir, "no image could be read (%ld skipped)", d->skipped);
    return ok && rt_data_fit(d, m, s, 0, 0, dir, e);
}

#else

bool rt_images_load(RtSplit *s, RtData *d, const RtMeta *m, const char *dir, bool skip_bad,
                    RtErr *e)
{
    (void)d, (void)m, (void)skip_bad;
    memset(s, 0, sizeof *s);
    return rt_fail(e, dir, "image folders need PNG and JPEG support, and this program's runtime "
                   "was built without the libpng or libjpeg headers (install libpng-dev and "
                   "libjpeg62-turbo-dev, then rebuild netc and the program)");
}

#endif
