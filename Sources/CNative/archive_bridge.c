#include "CNative.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int fail(char *message, size_t size, int code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
    return code;
}

// A relative path with no empty, "." or ".." component and no NUL or control characters.
static int safe_path(const char *path) {
    if (!path || !*path || path[0] == '/') return 0;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 && end && end[1] != '\0') return 0;            // "a//b"
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        for (size_t i = 0; i < n; i++) if ((unsigned char)p[i] < 0x20) return 0;
        if (!end) break;
        p = end + 1;
    }
    return 1;
}

// mkdir -p of the directories leading to `path` (all created by this extractor: none is a link).
static int make_parents(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

int sn_extract_archive(const char *archive_path, const char *target, sn_extract_limits limits,
                       sn_extract_result *result, char *message, size_t message_size) {
    memset(result, 0, sizeof(*result));
    message[0] = '\0';
    struct statvfs fs;
    if (statvfs(target, &fs) == 0) {
        uint64_t free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
        if (free_bytes < limits.reserve_bytes)
            return fail(message, message_size, SN_EXTRACT_NO_SPACE, "only %llu MB free on the data disk (keeping %llu MB free)",
                        (unsigned long long)(free_bytes >> 20), (unsigned long long)(limits.reserve_bytes >> 20));
        // Never fill the disk: the extracted total is also capped by what is free beyond the reserve.
        if (free_bytes - limits.reserve_bytes < limits.max_total_bytes) limits.max_total_bytes = free_bytes - limits.reserve_bytes;
    }
    struct archive *a = archive_read_new();
    if (!a) return fail(message, message_size, SN_EXTRACT_IO, "out of memory");
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, archive_path, 1 << 16) != ARCHIVE_OK) {
        int code = fail(message, message_size, SN_EXTRACT_CORRUPT, "not a readable tar or tar.gz archive: %s", archive_error_string(a));
        archive_read_free(a);
        return code;
    }
    int code = SN_EXTRACT_OK;
    char *path = malloc(PATH_MAX + 1);
    char *buffer = malloc(1 << 16);
    if (!path || !buffer) code = fail(message, message_size, SN_EXTRACT_IO, "out of memory");
    struct archive_entry *entry;
    while (code == SN_EXTRACT_OK) {
        int r = archive_read_next_header(a, &entry);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            code = fail(message, message_size, SN_EXTRACT_CORRUPT, "not a readable tar or tar.gz archive: %s", archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(entry);
        mode_t type = archive_entry_filetype(entry);
        if (type != AE_IFREG && type != AE_IFDIR) {
            code = fail(message, message_size, SN_EXTRACT_FORBIDDEN,
                        "the archive contains links or special files (%s); only plain files and folders are accepted", name ? name : "?");
            break;
        }
        if (archive_entry_hardlink(entry) || archive_entry_symlink(entry)) {
            code = fail(message, message_size, SN_EXTRACT_FORBIDDEN, "the archive contains a link: %s", name ? name : "?");
            break;
        }
        if (!safe_path(name)) {
            code = fail(message, message_size, SN_EXTRACT_FORBIDDEN, "the archive contains a path escaping its folder: %s", name ? name : "?");
            break;
        }
        if (snprintf(path, PATH_MAX + 1, "%s/%s", target, name) > PATH_MAX) {
            code = fail(message, message_size, SN_EXTRACT_FORBIDDEN, "path too long in the archive: %s", name);
            break;
        }
        size_t len = strlen(path);
        if (len > 0 && path[len - 1] == '/') path[len - 1] = '\0';
        if (make_parents(path) != 0) { code = fail(message, message_size, SN_EXTRACT_IO, "cannot create folders for %s", name); break; }
        // Folders count as files too: millions of tiny directory headers would exhaust inodes.
        if (++result->files > limits.max_files) {
            code = fail(message, message_size, SN_EXTRACT_LIMIT, "the archive holds more than %llu files and folders",
                        (unsigned long long)limits.max_files);
            break;
        }
        if (type == AE_IFDIR) {
            if (mkdir(path, 0755) != 0 && errno != EEXIST) code = fail(message, message_size, SN_EXTRACT_IO, "cannot create %s", name);
            continue;
        }
        // Checked twice: the size the header declares, and the bytes actually written.
        if (archive_entry_size_is_set(entry) && (uint64_t)archive_entry_size(entry) > limits.max_file_bytes) {
            code = fail(message, message_size, SN_EXTRACT_LIMIT, "%s is larger than %llu MB", name, (unsigned long long)(limits.max_file_bytes >> 20));
            break;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) { code = fail(message, message_size, SN_EXTRACT_IO, "cannot write %s", name); break; }
        uint64_t written = 0;
        for (;;) {
            la_ssize_t n = archive_read_data(a, buffer, 1 << 16);
            if (n == 0) break;
            if (n < 0) { code = fail(message, message_size, SN_EXTRACT_CORRUPT, "damaged archive data in %s: %s", name, archive_error_string(a)); break; }
            written += (uint64_t)n;
            result->bytes += (uint64_t)n;
            if (written > limits.max_file_bytes) {
                code = fail(message, message_size, SN_EXTRACT_LIMIT, "%s is larger than %llu MB", name, (unsigned long long)(limits.max_file_bytes >> 20));
                break;
            }
            // Other extractions may be filling the same disk: look again every 64 MiB.
            if ((result->bytes >> 26) != ((result->bytes - (uint64_t)n) >> 26) && statvfs(target, &fs) == 0 &&
                (uint64_t)fs.f_bavail * fs.f_frsize < limits.reserve_bytes) {
                code = fail(message, message_size, SN_EXTRACT_NO_SPACE, "the data disk reached its reserve of %llu MB free",
                            (unsigned long long)(limits.reserve_bytes >> 20));
                break;
            }
            if (result->bytes > limits.max_total_bytes) {
                code = fail(message, message_size, SN_EXTRACT_LIMIT, "the archive expands to more than %llu MB", (unsigned long long)(limits.max_total_bytes >> 20));
                break;
            }
            for (la_ssize_t off = 0; off < n;) {
                ssize_t w = write(fd, buffer + off, (size_t)(n - off));
                if (w < 0) { if (errno == EINTR) continue; code = fail(message, message_size, SN_EXTRACT_IO, "cannot write %s", name); break; }
                off += w;
            }
            if (code != SN_EXTRACT_OK) break;
        }
        close(fd);
    }
    free(path);
    free(buffer);
    archive_read_free(a);
    return code;
}
