/* settings.c - the rules for training settings, one set for every place a
 * setting can come from: the command line (--lr, --batch, ...) and a
 * checkpoint's metadata (netc.lr, netc.batch, ...).  A checkpoint is a
 * file, so it is checked as strictly as a user's typing.
 *
 * Numbers are decimal text.  Integers: an optional '-' and digits, in
 * range.  Reals: strtod syntax, finite, and representable as a normal
 * float once converted (the optimiser works in float), so "1e39" (inf as a
 * float) and "1e-50" (0 as a float) are refused like "inf" and "0".
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "rt.h"

bool rt_parse_long(const char *s, long min, long max, long *out)
{
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < min || x > max)
        return false;
    *out = x;
    return true;
}

bool rt_parse_real(const char *s, RtReal kind, float *out)
{
    unsigned char c = (unsigned char)s[0];
    if (!(isdigit(c) || c == '.' || c == '-' || c == '+'))
        return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(x) || signbit(x))
        return false;
    float f = (float)x;
    if (isinf(f) || (x != 0 && !(f >= FLT_MIN)))
        return false;
    switch (kind) {
    case RT_REAL_POSITIVE:
        if (!(f > 0))
            return false;
        break;
    case RT_REAL_FRACTION:
        if (!(f < 1))
            return false;
        break;
    case RT_REAL_NONNEG:
        break;
    }
    *out = f;
    return true;
}

const char *rt_real_rule(RtReal kind)
{
    switch (kind) {
    case RT_REAL_POSITIVE:
        return "a positive number a float holds (1.2e-38 to 3.4e38)";
    case RT_REAL_FRACTION:
        return "a number in [0, 1)";
    default:
        return "0 or a positive number a float holds (1.2e-38 to 3.4e38)";
    }
}
