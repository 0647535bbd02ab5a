/* gendata -- deterministic benchmark datasets for bench/compare.
 *
 *   gendata bigfile    DIR MIB        DIR/big.bin: first half random, second half text
 *   gendata smallfiles DIR COUNT      COUNT small files (0..32 KiB) in 3 levels of folders
 *   gendata devhome    DIR PERMILLE   a developer's home directory, scaled (1000 = ~1 GiB)
 *
 * Every byte comes from splitmix64 seeded by a hash of the file's path and
 * kind, so the output is the same on every machine and in any order.  The
 * git repositories of devhome are made by bench/compare (it needs git); this
 * program lists their directories on stdout ("git DIR").
 *
 * Content kinds, roughly as zstd -3 sees real data:
 *   random  incompressible (media, archives, caches)
 *   text    prose-like lines (~3x)
 *   code    C / JavaScript-like source (~4-5x)
 *   obj     object-file-like: code bytes, zero runs, strings (~2x)
 *   sparse  zeros with random islands (VM images)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { RANDOM, TEXT, CODE, OBJ, SPARSE } kind;

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return n ? next(s) % n : 0;
}

static uint64_t hash(const char *a, uint64_t b)
{
    uint64_t h = 1469598103934665603ull ^ b;
    for (; *a; a++) h = (h ^ (uint8_t)*a) * 1099511628211ull;
    return h;
}

/* log-uniform in [lo, hi] */
static size_t logsize(uint64_t *s, size_t lo, size_t hi)
{
    double f = (double)(next(s) >> 11) / 9007199254740992.0;
    double l = lo ? (double)lo : 1.0;
    size_t v = (size_t)(l * __builtin_pow(((double)hi + 1) / l, f));
    return v < lo ? lo : v > hi ? hi : v;
}

static const char *const WORDS[] = {
    "alpha",   "buffer",  "context", "delta",   "error",    "file",     "group",   "handle",  "index",  "join",
    "key",     "length",  "mutex",   "node",    "offset",   "pack",     "queue",   "result",  "size",   "tree",
    "update",  "value",   "window",  "chunk",   "blob",     "snapshot", "restore", "backup",  "config", "stream",
    "the",     "of",      "and",     "to",      "in",       "is",       "that",    "for",     "with",   "as",
    "server",  "client",  "request", "response", "session", "token",    "user",    "account", "order",  "price",
    "module",  "export",  "import",  "require", "function", "return",   "const",   "static",  "struct", "int",
    "while",   "if",      "else",    "switch",  "case",     "break",    "default", "true",    "false",  "null",
    "count",   "total",   "cache",   "path",    "name",     "data",     "list",    "map",     "set",    "get",
    "parse",   "format",  "render",  "layout",  "style",    "color",    "width",   "height",  "margin", "border",
    "test",    "expect",  "assert",  "mock",    "spec",     "describe", "it",      "should",  "async",  "await",
    "promise", "callback", "event",  "listener", "emit",    "dispatch", "reducer", "state",   "props",  "component",
    "was",     "were",    "been",    "have",    "which",    "their",    "there",   "about",   "would",  "these",
};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

static size_t put(uint8_t *b, size_t pos, size_t n, const char *s)
{
    while (*s && pos < n) b[pos++] = (uint8_t)*s++;
    return pos;
}

static const char *word(uint64_t *s)
{
    return WORDS[below(s, NWORDS)];
}

static void fill_text(uint64_t *s, uint8_t *b, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        unsigned words = 5 + (unsigned)below(s, 12);
        for (unsigned w = 0; w < words && pos < n; w++) {
            const char *x = word(s);
            if (w == 0 && pos < n) {
                b[pos++] = (uint8_t)(x[0] - 32); /* capital */
                x++;
            }
            pos = put(b, pos, n, x);
            pos = put(b, pos, n, w + 1 == words ? ".\n" : below(s, 9) ? " " : ", ");
        }
        if (below(s, 6) == 0) pos = put(b, pos, n, "\n");
    }
}

static void fill_code(uint64_t *s, uint8_t *b, size_t n)
{
    static const char *const tmpl[] = {
        "static int @_@(struct @ *@, size_t @)\n{\n", "    if (@->@ == NULL)\n        return -@;\n",
        "    for (size_t i = 0; i < @; i++)\n        @[i] = @_@(@, i);\n", "    return @;\n}\n\n",
        "#include \"@/@.h\"\n", "/* @ @ @ @ @ @. */\n", "const @ = require('@/@');\n",
        "export function @(@, @) {\n  const @ = @.@(@);\n", "  if (!@) throw new Error('@ @');\n",
        "  return @.map((@) => @.@);\n}\n\n", "    @->@ = @_@(@->@, @);\n", "  @: '@-@',\n",
    };
    size_t pos = 0;
    char tmp[32];
    while (pos < n) {
        const char *t = tmpl[below(s, sizeof tmpl / sizeof tmpl[0])];
        for (; *t && pos < n; t++) {
            if (*t == '@') pos = put(b, pos, n, word(s));
            else b[pos++] = (uint8_t)*t;
        }
        if (below(s, 10) == 0) {
            snprintf(tmp, sizeof tmp, "    // %u\n", (unsigned)below(s, 100000));
            pos = put(b, pos, n, tmp);
        }
    }
}

static void fill_random(uint64_t *s, uint8_t *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = next(s);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (uint8_t)next(s);
}

static void fill_obj(uint64_t *s, uint8_t *b, size_t n)
{
    static const uint8_t ops[] = {0x48, 0x89, 0x8b, 0xe8, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x83, 0xc4, 0x5d,
                                  0x55, 0x41, 0x57, 0x56, 0x53, 0x85, 0xc0, 0x74, 0x75, 0xeb, 0x31, 0xff};
    for (size_t pos = 0; pos < n;) {
        size_t len = 64 + (size_t)below(s, 448);
        if (len > n - pos) len = n - pos;
        unsigned what = (unsigned)below(s, 20);
        if (what < 11) {
            for (size_t i = 0; i < len; i++) {
                uint64_t r = next(s);
                b[pos + i] = (r & 3) ? ops[(r >> 8) % sizeof ops] : (uint8_t)(r >> 16);
            }
        } else if (what < 16) {
            memset(b + pos, 0, len);
        } else if (what < 18) {
            for (size_t i = 0; i + 4 <= len; i += 4) {
                uint32_t v = (uint32_t)below(s, 4096);
                memcpy(b + pos + i, &v, 4);
            }
            for (size_t i = len & ~(size_t)3; i < len; i++) b[pos + i] = 0;
        } else {
            size_t e = pos + len, p = pos;
            while (p < e) {
                p = put(b, p, e, word(s));
                if (p < e) b[p++] = below(s, 3) ? '_' : 0;
            }
        }
        pos += len;
    }
}

static void fill_sparse(uint64_t *s, uint8_t *b, size_t n)
{
    /* 1 MiB pieces: mostly empty, some fully written */
    memset(b, 0, n);
    if (below(s, 5) == 0) fill_random(s, b, n);
    else if (below(s, 3) == 0) fill_obj(s, b, n / 8);
}

static void fill(kind k, uint64_t *s, uint8_t *b, size_t n)
{
    switch (k) {
    case RANDOM: fill_random(s, b, n); break;
    case TEXT: fill_text(s, b, n); break;
    case CODE: fill_code(s, b, n); break;
    case OBJ: fill_obj(s, b, n); break;
    case SPARSE: fill_sparse(s, b, n); break;
    }
}

/* ---- files ---------------------------------------------------------------- */

static uint8_t *piece;
#define PIECE (1u << 20)
static unsigned long long files_written, bytes_written;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "gendata: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) die("mkdir", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) die("mkdir", tmp);
}

/* The seed depends on `label` (not the path) so identical labels give
 * identical files: duplicated packages, shared objects. */
static void write_file(const char *path, const char *label, kind k, size_t size)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        mkdirs(dir);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("create", path);
    uint64_t s = hash(label, (uint64_t)k);
    for (size_t done = 0; done < size;) {
        size_t n = size - done < PIECE ? size - done : PIECE;
        fill(k, &s, piece, n);
        for (size_t w = 0; w < n;) {
            ssize_t r = write(fd, piece + w, n - w);
            if (r < 0) die("write", path);
            w += (size_t)r;
        }
        done += n;
    }
    if (close(fd) < 0) die("close", path);
    files_written++;
    bytes_written += size;
}

static void file(const char *dir, const char *rel, kind k, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    write_file(path, rel, k, size);
}

static void literal(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) die("write", path);
    files_written++;
    bytes_written += strlen(text);
}

/* ---- datasets ----------------------------------------------------------- */

static void bigfile(const char *dir, size_t mib)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    mkdirs(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("create", path);
    uint64_t s = hash("big", 0);
    for (size_t i = 0; i < mib; i++) {
        fill(i < mib / 2 ? RANDOM : TEXT, &s, piece, PIECE);
        if (write(fd, piece, PIECE) != PIECE) die("write", path);
    }
    close(fd);
    files_written++;
    bytes_written += (unsigned long long)mib << 20;
}

static void smallfiles(const char *dir, unsigned count)
{
    uint64_t s = hash("smallfiles", count);
    static const char *const ext[] = {"txt", "c", "js", "json", "bin", "md"};
    for (unsigned i = 0; i < count; i++) {
        char rel[128];
        unsigned e = (unsigned)below(&s, 6);
        snprintf(rel, sizeof rel, "d%02x/d%02x/f%06u.%s", i % 16, (i / 16) % 16, i, ext[e]);
        size_t size = below(&s, 20) == 0 ? 0 : logsize(&s, 16, 32 * 1024);
        kind k = e == 4 ? (below(&s, 2) ? RANDOM : OBJ) : e == 0 || e == 5 ? TEXT : CODE;
        file(dir, rel, k, size);
    }
}

static unsigned scaled(unsigned full, unsigned permille, unsigned min)
{
    unsigned v = (unsigned)((unsigned long long)full * permille / 1000);
    return v < min ? min : v;
}

static void project(const char *dir, const char *name, unsigned nfiles, uint64_t *s)
{
    static const char *const sub[] = {"src", "src/core", "src/util", "include", "tests", "docs", "scripts"};
    char rel[512];
    for (unsigned i = 0; i < nfiles; i++) {
        unsigned d = (unsigned)below(s, 7);
        const char *ext = d == 5 ? "md" : d == 6 ? "sh" : d == 3 ? "h" : "c";
        snprintf(rel, sizeof rel, "src/%s/%s/%s_%u.%s", name, sub[d], WORDS[below(s, NWORDS)], i, ext);
        file(dir, rel, d == 5 ? TEXT : CODE, logsize(s, 200, 40 * 1024));
    }
    snprintf(rel, sizeof rel, "src/%s/README.md", name);
    file(dir, rel, TEXT, 4000);
    printf("git %s/src/%s\n", dir, name);
}

static const char *const LICENSES[] = {"MIT", "ISC", "Apache-2.0"};

/* One package at `at`; `label` decides its content, so the same package at
 * two places in the tree is byte-identical (as npm's duplicates are). */
static void package(const char *dir, const char *at, const char *label, unsigned npkg, int depth)
{
    char rel[2048], lab[1024];
    uint64_t ps = hash(label, 7);
#define PKG_FILE(relname, k, size)                                     \
    do {                                                               \
        snprintf(rel, sizeof rel, "%s/%s", at, relname);               \
        snprintf(lab, sizeof lab, "%s/%s", label, relname);            \
        char path_[4096];                                              \
        snprintf(path_, sizeof path_, "%s/%s", dir, rel);              \
        write_file(path_, lab, k, size);                               \
    } while (0)
    PKG_FILE("package.json", CODE, 300 + (size_t)below(&ps, 1200));
    PKG_FILE("README.md", TEXT, logsize(&ps, 500, 12000));
    {
        /* three license texts shared by all packages */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/LICENSE", dir, at);
        write_file(path, LICENSES[below(&ps, 3)], TEXT, 1100);
    }
    PKG_FILE("index.js", CODE, logsize(&ps, 100, 3000));
    unsigned nlib = 2 + (unsigned)below(&ps, 14);
    for (unsigned i = 0; i < nlib; i++) {
        char name[128];
        snprintf(name, sizeof name, "lib/%s_%u.js", WORDS[below(&ps, NWORDS)], i);
        PKG_FILE(name, CODE, logsize(&ps, 200, 20000));
    }
    if (below(&ps, 3) == 0) PKG_FILE("types/index.d.ts", CODE, logsize(&ps, 300, 8000));
    if (below(&ps, 4) == 0) PKG_FILE("dist/bundle.min.js", CODE, logsize(&ps, 5000, 120000));
    if (depth < 2 && below(&ps, 5) == 0) {
        unsigned nested = 1 + (unsigned)below(&ps, 3);
        for (unsigned i = 0; i < nested; i++) {
            unsigned k = (unsigned)below(&ps, npkg);
            char sub[1024], sublabel[64];
            snprintf(sublabel, sizeof sublabel, "pkg-%u", k);
            snprintf(sub, sizeof sub, "%s/node_modules/%s-%s", at, WORDS[k % NWORDS], sublabel);
            package(dir, sub, sublabel, npkg, depth + 1);
        }
    }
#undef PKG_FILE
}

static size_t scaled_bytes(size_t full, unsigned permille, size_t min)
{
    size_t v = (size_t)((unsigned long long)full * permille / 1000);
    return v < min ? min : v;
}

/* An executable: the build's objects one after the other. */
static void link_binary(const char *dir, const char *rel, const char *cfg, unsigned nobj)
{
    char path[4096], label[64];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (fd < 0) die("create", path);
    size_t total = 0;
    for (unsigned i = 0; i < nobj; i++) {
        snprintf(label, sizeof label, "obj-%u-%s", i, (i % 2 == 0) ? "debug" : cfg);
        uint64_t sz = hash(label, 99);
        size_t size = logsize(&sz, 4096, 200 * 1024);
        uint64_t s = hash(label, (uint64_t)OBJ);
        fill(OBJ, &s, piece, size);
        if (write(fd, piece, size) != (ssize_t)size) die("write", path);
        total += size;
    }
    close(fd);
    files_written++;
    bytes_written += total;
}

static void devhome(const char *dir, unsigned pm)
{
    uint64_t s = hash("devhome", pm);
    char rel[512];

    /* dotfiles and settings */
    static const char *const dots[] = {".bashrc", ".profile", ".gitconfig", ".vimrc", ".ssh/config", ".ssh/known_hosts"};
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) file(dir, dots[i], TEXT, logsize(&s, 200, 6000));
    for (unsigned i = 0; i < 30; i++) {
        snprintf(rel, sizeof rel, ".config/%s-%u/settings.json", WORDS[i % NWORDS], i);
        file(dir, rel, CODE, logsize(&s, 100, 20000));
    }
    /* caches: many small incompressible files */
    unsigned n = scaled(2000, pm, 40);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, ".cache/pip/http/%x/%x/%016llx", i % 16, (i / 16) % 16, (unsigned long long)next(&s));
        file(dir, rel, RANDOM, logsize(&s, 1024, 64 * 1024));
    }
    n = scaled(500, pm, 10);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, ".cache/thumbnails/large/%016llx.png", (unsigned long long)next(&s));
        file(dir, rel, RANDOM, logsize(&s, 2048, 30 * 1024));
    }

    /* git checkouts */
    unsigned nproj = scaled(4, pm, 1), perproj = scaled(600, pm, 40);
    for (unsigned p = 0; p < nproj; p++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%s", WORDS[below(&s, NWORDS)], WORDS[below(&s, NWORDS)]);
        project(dir, name, perproj, &s);
    }

    /* a web app with node_modules (which git ignores) */
    project(dir, "webapp", scaled(200, pm, 20), &s);
    literal(dir, "src/webapp/.gitignore", "node_modules/\n");
    unsigned npkg = scaled(1500, pm, 30);
    for (unsigned i = 0; i < npkg; i++) {
        char at[256], label[64];
        snprintf(label, sizeof label, "pkg-%u", i);
        snprintf(at, sizeof at, "src/webapp/node_modules/%s-%s", WORDS[i % NWORDS], label);
        package(dir, at, label, npkg, 0);
    }

    /* build outputs: debug and release objects (half identical), binaries */
    unsigned nobj = scaled(800, pm, 20);
    static const char *const cfgs[] = {"debug", "release"};
    for (int c = 0; c < 2; c++) {
        for (unsigned i = 0; i < nobj; i++) {
            char label[64], path[4096];
            snprintf(label, sizeof label, "obj-%u-%s", i, (i % 2 == 0) ? "debug" : cfgs[c]);
            uint64_t sz = hash(label, 99);
            snprintf(path, sizeof path, "%s/build/%s/obj/%s_%u.o", dir, cfgs[c], WORDS[i % NWORDS], i);
            write_file(path, label, OBJ, logsize(&sz, 4096, 200 * 1024));
        }
        snprintf(rel, sizeof rel, "build/%s/bin", cfgs[c]);
        char bindir[4096];
        snprintf(bindir, sizeof bindir, "%s/%s", dir, rel);
        mkdirs(bindir);
        snprintf(rel, sizeof rel, "build/%s/bin/app", cfgs[c]);
        link_binary(dir, rel, cfgs[c], nobj);
    }

    /* downloads, pictures, documents, a VM image */
    file(dir, "Downloads/distro-live-amd64.iso", RANDOM, scaled_bytes(300u << 20, pm, 4u << 20));
    n = scaled(6, pm, 1);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "Downloads/release-%u.tar.gz", i);
        file(dir, rel, RANDOM, logsize(&s, 5u << 20, 50u << 20) * (pm < 1000 ? pm : 1000) / 1000 + 4096);
    }
    n = scaled(40, pm, 3);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "Pictures/2023/IMG_%04u.jpg", 1000 + i);
        file(dir, rel, RANDOM, logsize(&s, 1u << 20, 8u << 20));
    }
    n = scaled(300, pm, 10);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "Documents/notes/%s-%u.md", WORDS[below(&s, NWORDS)], i);
        size_t size = logsize(&s, 1000, 100 * 1024);
        file(dir, rel, TEXT, size);
        if (i % 10 == 0) { /* an old copy of the same note */
            char path[4096], label[512];
            snprintf(label, sizeof label, "%s", rel);
            snprintf(path, sizeof path, "%s/Documents/old/%u.md", dir, i);
            write_file(path, label, TEXT, size);
        }
    }
    file(dir, "vm/disk.img", SPARSE, scaled_bytes(256u << 20, pm, 8u << 20));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gendata bigfile DIR MIB | smallfiles DIR COUNT | devhome DIR PERMILLE\n");
        return 2;
    }
    piece = malloc(PIECE);
    if (!piece) return 1;
    const char *what = argv[1], *dir = argv[2];
    unsigned long n = strtoul(argv[3], NULL, 10);
    if (!strcmp(what, "bigfile")) bigfile(dir, n);
    else if (!strcmp(what, "smallfiles")) smallfiles(dir, (unsigned)n);
    else if (!strcmp(what, "devhome")) devhome(dir, (unsigned)n);
    else {
        fprintf(stderr, "gendata: unknown dataset %s\n", what);
        return 2;
    }
    fprintf(stderr, "gendata %s: %llu files, %.1f MiB\n", what, files_written, (double)bytes_written / 1048576);
    return 0;
}
