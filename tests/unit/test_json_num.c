/* Shortest JSON numbers (util/json_num.h): over a table of doubles and
 * float32 values, the text is the expected shortest one, reads back to the
 * same value, and no shorter precision would; a dump of a document holding
 * reals, integers and number-like strings rewrites only the reals. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/json_num.h"

static void test_doubles(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {0.9, "0.9"},
        {0.999, "0.999"},
        {1e-8, "1e-8"},
        {3.0, "3.0"},
        {-2.5, "-2.5"},
        {0.0, "0.0"},
        {1e20, "1e+20"},
        {100.0, "100.0"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {5e-324, "5e-324"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {0.30000000000000004, "0.30000000000000004"},
        {123456.789, "123456.789"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[32];
        int n = eg_fmt_double(cases[i].v, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(cases[i].text));
        assert_string_equal(buf, cases[i].text);
        assert_true(strtod(buf, NULL) == cases[i].v);
    }
    char buf[32];
    assert_int_equal(eg_fmt_double(NAN, buf, sizeof buf), -1);
    assert_int_equal(eg_fmt_double(INFINITY, buf, sizeof buf), -1);
    assert_int_equal(eg_fmt_double(0.1, buf, 3), -1);
}

static void test_floats(void **state)
{
    static const struct {
        float v;
        const char *text;
    } cases[] = {
        {0.1f, "0.1"},          {2.30258512f, "2.3025851"}, {1.0f / 3, "0.33333334"},
        {1e-8f, "1e-8"},       {16777216.0f, "16777216.0"}, {-0.665476978f, "-0.665477"},
        {FLT_MIN, "1.1754944e-38"}, {FLT_MAX, "3.4028235e+38"}, {0.5f, "0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[32];
        int n = eg_fmt_float(cases[i].v, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(n, (int)strlen(cases[i].text));
        assert_true(strtof(buf, NULL) == cases[i].v);
    }
    /* Over many floats: at most 9 digits, read back exactly, and one digit
     * fewer would not. */
    uint32_t bits = 0x3f800000u;
    for (int i = 0; i < 20000; i++) {
        bits = bits * 1664525u + 1013904223u;
        float v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        char buf[32], shorter[32];
        assert_true(eg_fmt_float(v, buf, sizeof buf) > 0);
        assert_true(strtof(buf, NULL) == v);
        /* Significant digits: the mantissa's without leading and trailing
         * zeros. */
        char mant[32];
        int m = 0;
        for (const char *p = buf; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9' && (m || *p != '0')) mant[m++] = *p;
        if (m == 0) mant[m++] = '0'; /* a zero */
        while (m > 1 && mant[m - 1] == '0') m--;
        int digits = m;
        assert_true(digits >= 1 && digits <= 9);
        /* Rounded to one digit fewer, the value is another float. */
        if (digits > 1) {
            snprintf(shorter, sizeof shorter, "%.*e", digits - 2, (double)v);
            assert_true(strtof(shorter, NULL) != v);
        }
    }
}

static void test_json(void **state)
{
    json_t *j = json_pack("{s:f, s:f, s:I, s:s, s:o, s:o, s:[f, f], s:o}", "gamma", 0.1,
                          "beta1", 0.9, "steps", (json_int_t)1565, "name", "0.10000000000000001",
                          "loss", eg_json_f32(2.30258512f), "nan", eg_json_f32(NAN), "w", 0.5,
                          -1e-12, "big", eg_json_f64(1e300));
    assert_non_null(j);
    char *text = eg_json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);
    assert_string_equal(text, "{\"beta1\":0.9,\"big\":1e+300,\"gamma\":0.1,\"loss\":2.3025851,"
                              "\"name\":\"0.10000000000000001\",\"nan\":null,\"steps\":1565,"
                              "\"w\":[0.5,-1e-12]}");
    json_error_t err;
    json_t *back = json_loads(text, 0, &err);
    assert_non_null(back);
    assert_true(json_real_value(json_object_get(back, "gamma")) == 0.1);
    assert_true((float)json_real_value(json_object_get(back, "loss")) == 2.30258512f);
    json_decref(back);
    free(text);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
