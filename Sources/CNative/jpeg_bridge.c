// libjpeg reports fatal errors through err->error_exit, whose default prints and calls exit().
// We replace it with a longjmp back to the decode call, so a corrupt upload becomes an error value.
#include "CNative.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    int hit_eof;            // the data ended early; libjpeg pads it and only warns
    char message[JMSG_LENGTH_MAX];
} sn_jpeg_error;

static void sn_jpeg_error_exit(j_common_ptr cinfo) {
    sn_jpeg_error *err = (sn_jpeg_error *)cinfo->err;
    err->base.format_message(cinfo, err->message);
    longjmp(err->escape, 1);
}

static void sn_jpeg_emit_message(j_common_ptr cinfo, int level) {
    sn_jpeg_error *err = (sn_jpeg_error *)cinfo->err;
    // Warnings (level -1) are silent, except that a truncated stream must fail the decode.
    if (level < 0 && err->base.msg_code == JWRN_JPEG_EOF) err->hit_eof = 1;
}

static void sn_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void set_message(sn_decoded_image *out, const char *text) {
    snprintf(out->message, sizeof(out->message), "%s", text);
}

int sn_jpeg_decode(const uint8_t *data, size_t length, uint64_t max_pixels, int want_gray,
                   sn_decoded_image *out) {
    memset(out, 0, sizeof(*out));
    if (data == NULL || length == 0) {
        set_message(out, "empty JPEG data");
        return SN_ERR_EMPTY;
    }
    struct jpeg_decompress_struct cinfo;
    sn_jpeg_error err;
    memset(&err, 0, sizeof(err));
    // Written after setjmp and read after a longjmp: must be volatile to survive it.
    uint8_t *volatile pixels = NULL;
    JSAMPLE *volatile row = NULL;

    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = sn_jpeg_error_exit;
    err.base.emit_message = sn_jpeg_emit_message;
    err.base.output_message = sn_jpeg_output_message;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        snprintf(out->message, sizeof(out->message), "invalid JPEG: %s", err.message);
        return SN_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);

    uint64_t w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0) {
        jpeg_destroy_decompress(&cinfo);
        set_message(out, "JPEG has zero width or height");
        return SN_ERR_EMPTY;
    }
    if (w * h > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, sizeof(out->message),
                 "JPEG is %llux%llu = %llu pixels, over the limit of %llu",
                 (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                 (unsigned long long)max_pixels);
        return SN_ERR_TOO_LARGE;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int channels = want_gray ? 1 : 3;
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else {
        cinfo.out_color_space = want_gray ? JCS_GRAYSCALE : JCS_RGB;
    }
    jpeg_start_decompress(&cinfo);
    int src_channels = cinfo.output_components;
    pixels = malloc((size_t)(w * h * (uint64_t)channels));
    row = malloc((size_t)w * (size_t)src_channels);
    if (pixels == NULL || row == NULL) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        set_message(out, "out of memory decoding JPEG");
        return SN_ERR_NOMEM;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1] = {row};
        jpeg_read_scanlines(&cinfo, rows, 1);
        uint8_t *dst = pixels + y * w * (size_t)channels;
        if (!cmyk) {
            memcpy(dst, row, (size_t)w * (size_t)channels);
            continue;
        }
        // Adobe writes CMYK inverted; libjpeg hands it back as stored, so C*K/255 is the red value.
        for (size_t x = 0; x < w; x++) {
            const JSAMPLE *p = row + x * 4;
            unsigned k = p[3];
            unsigned r = p[0] * k / 255, g = p[1] * k / 255, b = p[2] * k / 255;
            if (channels == 1) {
                dst[x] = (uint8_t)((r * 299 + g * 587 + b * 114 + 500) / 1000);
            } else {
                dst[x * 3] = (uint8_t)r; dst[x * 3 + 1] = (uint8_t)g; dst[x * 3 + 2] = (uint8_t)b;
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (err.hit_eof) {
        free(pixels);
        set_message(out, "invalid JPEG: data ends before the image is complete (truncated)");
        return SN_ERR_CORRUPT;
    }
    out->width = (int32_t)w;
    out->height = (int32_t)h;
    out->channels = channels;
    out->pixels = pixels;
    return SN_OK;
}

int sn_jpeg_dimensions(const uint8_t *data, size_t length, int32_t *width, int32_t *height) {
    if (data == NULL || length == 0) return SN_ERR_EMPTY;
    struct jpeg_decompress_struct cinfo;
    sn_jpeg_error err;
    memset(&err, 0, sizeof(err));
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = sn_jpeg_error_exit;
    err.base.emit_message = sn_jpeg_emit_message;
    err.base.output_message = sn_jpeg_output_message;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        return SN_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int32_t)cinfo.image_width;
    *height = (int32_t)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return SN_OK;
}

void sn_free(void *pointer) { free(pointer); }
