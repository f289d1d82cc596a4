/* SPDX-License-Identifier: MIT */
/* Replays a corpus through a libFuzzer target without libFuzzer: every file under the
 * directories (or files) given on the command line, plus every prefix of each file so that
 * truncation paths run too. Run under the sanitizer build this is the suite `fuzz`. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_inputs;

static int run_file(const char *path) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = file_read_all(path, 1u << 20, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        for (size_t i = 0; i <= len; i += (len > 4096 ? 97 : 1)) {
                /* exact-size copies so ASan sees reads past the end */
                uint8_t *copy = malloc(i ? i : 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, buf, i);
                LLVMFuzzerTestOneInput(copy, i);
                free(copy);
        }
        LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
        n_inputs++;
        return 0;
}

static int run_path(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0) {
                perror(path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort), r = 0;
        if (n < 0) {
                perror(path);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.') {
                        char p[4096];
                        snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
                        if (run_path(p) < 0)
                                r = -1;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        int r = 0;
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = 1;
        if (n_inputs == 0) {
                fprintf(stderr, "no corpus inputs found\n");
                return 1;
        }
        printf("replayed %u inputs with all their prefixes\n", n_inputs);
        return r;
}
