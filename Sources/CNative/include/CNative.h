#ifndef SPIKESERVE_CNATIVE_H
#define SPIKESERVE_CNATIVE_H

#include <stddef.h>
#include <stdint.h>

/// Result of a decode. On success `pixels` is a malloc'd buffer of width*height*channels bytes,
/// row-major, interleaved; the caller frees it with sn_free. On failure `pixels` is NULL and
/// `message` holds a NUL-terminated reason.
typedef struct {
    int32_t width;
    int32_t height;
    int32_t channels;   // 1 (gray) or 3 (RGB)
    uint8_t *pixels;
    char message[200];
} sn_decoded_image;

/// Status codes shared by the decoders.
enum {
    SN_OK = 0,
    SN_ERR_CORRUPT = 1,     // the library rejected the data (truncated, malformed, unsupported)
    SN_ERR_TOO_LARGE = 2,   // the header declares more pixels than max_pixels
    SN_ERR_EMPTY = 3,       // zero width or height, or no data
    SN_ERR_NOMEM = 4,
};

/// Decodes a JPEG held in memory. The header is read first: a zero size or more than `max_pixels`
/// pixels fails before any pixel memory is allocated. `want_gray` selects 1 output channel,
/// otherwise 3 (gray sources are replicated, CMYK/YCCK converted). Never calls exit(): libjpeg's
/// error_exit is replaced by a longjmp back into this function.
int sn_jpeg_decode(const uint8_t *data, size_t length, uint64_t max_pixels, int want_gray,
                   sn_decoded_image *out);

/// Decodes a PNG held in memory through libpng's simplified API (any bit depth, palette,
/// interlacing, alpha composited onto black). Same contract as sn_jpeg_decode.
int sn_png_decode(const uint8_t *data, size_t length, uint64_t max_pixels, int want_gray,
                  sn_decoded_image *out);

/// Reads only the PNG/JPEG header: 0 and the dimensions on success.
int sn_jpeg_dimensions(const uint8_t *data, size_t length, int32_t *width, int32_t *height);

void sn_free(void *pointer);

/// CPU features relevant to choosing a BLAS kernel. A flag is 1 only when both the CPU reports
/// the instructions and the OS saves the register state they need (XCR0), so code using them can run.
typedef struct {
    int sse42, avx, fma, avx2, avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512_vnni, avx512_bf16;
} sn_cpu_features;

void sn_cpu_detect(sn_cpu_features *features);

/// Raises glibc's mmap and trim thresholds so large freed blocks are reused rather than unmapped.
void sn_keep_large_allocations(void);

/// Per-thread ceiling on the cores SpikeServe's parallel kernels use (0 = all cores).
void sn_set_thread_core_limit(int cores);
int sn_get_thread_core_limit(void);

/// The EXIF Orientation tag (1–8) of `data`: a whole JPEG file (libexif finds its APP1 "Exif"
/// segment) or an EXIF block (a PNG eXIf chunk's TIFF data, with or without the "Exif\0\0" header).
/// Returns 1 (as stored) when there is no EXIF, no Orientation tag, or the block is malformed:
/// a bad Exif block is never an error.
int sn_exif_orientation(const uint8_t *data, size_t length, int is_tiff);

/// Limits on what an uploaded archive may expand to.
typedef struct {
    uint64_t max_total_bytes;   // all files together
    uint64_t max_files;
    uint64_t max_file_bytes;    // one file
    uint64_t reserve_bytes;     // free disk space that must remain
} sn_extract_limits;

typedef struct {
    uint64_t files;
    uint64_t bytes;
} sn_extract_result;

enum {
    SN_EXTRACT_OK = 0,
    SN_EXTRACT_CORRUPT = 1,     // not a tar/tar.gz, or damaged
    SN_EXTRACT_FORBIDDEN = 2,   // a link, special file, or path escaping the target
    SN_EXTRACT_LIMIT = 3,       // a limit was exceeded (stopped at the first excess)
    SN_EXTRACT_NO_SPACE = 4,    // less free disk space than the reserve
    SN_EXTRACT_IO = 5,
};

/// Extracts a tar or tar.gz (libarchive) into the existing directory `target`: plain files and
/// folders only, relative paths without "..", files written with O_NOFOLLOW. Stops at the first
/// entry that breaks a rule or a limit (the caller removes `target`). The total is also capped by
/// the free disk space beyond `reserve_bytes`. `message` receives a reason a client may see.
int sn_extract_archive(const char *archive_path, const char *target, sn_extract_limits limits,
                       sn_extract_result *result, char *message, size_t message_size);

#endif
