/* The daemon's web page in a real browser: two daemons (one with a bearer
 * token) and tests/ui/dashboard.mjs, which drives Debian's chromium with
 * playwright-core through the page (the checks are listed there) and
 * saves screenshots under build/ui-screens. Plain build only (tests/run.sh's
 * slow list: "ui"). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon_harness.h"
#include "testutil.h"

#define TOKEN "page-test-token-42"

static void test_page_in_browser(void **state)
{
    (void)state;
    dh_daemon open_d, locked;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/open", tu_tmpdir());
    if (dh_start(&open_d, dir, NULL) != 0) fail_msg("cannot start a daemon");
    snprintf(dir, sizeof dir, "%s/locked", tu_tmpdir());
    dh_opts o = {.token = TOKEN};
    if (dh_start(&locked, dir, &o) != 0) fail_msg("cannot start a daemon with a token");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "node tests/ui/dashboard.mjs %s %s %s build/ui-screens 2>&1",
             open_d.base, locked.base, TOKEN);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[2048];
    while (fgets(line, sizeof line, p)) fprintf(stderr, "dashboard: %s", line);
    int rc = pclose(p);
    assert_true(dh_log_clean(&open_d));
    assert_int_equal(dh_stop(&open_d, SIGTERM, 20, NULL), 0);
    assert_int_equal(dh_stop(&locked, SIGTERM, 20, NULL), 0);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("the browser test failed (exit %d; node, chromium and daemon/ui/node_modules "
                 "come from make deps)", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_in_browser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
