/* Request header checks: the bearer token and the JSON content type. */
#include "api/api.h"

#include <string.h>
#include <strings.h>

int eg_const_time_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Touches every byte of b whatever a holds; a's bytes are read modulo
     * its length so that a shorter a costs the same. */
    unsigned diff = (unsigned)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = alen ? (unsigned char)a[i % alen] : 0;
        diff |= x ^ (unsigned char)b[i];
    }
    return diff == 0;
}

int eg_auth_ok(const char *authorization, const char *token)
{
    if (!token || !*token) return 1;
    if (!authorization) return 0;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) return 0;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    return eg_const_time_equal(p, len, token, strlen(token));
}

int eg_is_json_type(const char *content_type)
{
    if (!content_type) return 0;
    const char *p = content_type;
    while (*p == ' ' || *p == '\t') p++;
    static const char want[] = "application/json";
    if (strncasecmp(p, want, sizeof want - 1) != 0) return 0;
    p += sizeof want - 1;
    while (*p == ' ' || *p == '\t') p++;
    return *p == '\0' || *p == ';';
}
