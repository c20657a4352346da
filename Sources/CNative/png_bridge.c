// libpng's simplified API (png_image_*) reports errors through image.message and a zero return;
// it does its own setjmp internally, so no longjmp reaches us.
#include "CNative.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

int sn_png_decode(const uint8_t *data, size_t length, uint64_t max_pixels, int want_gray,
                  sn_decoded_image *out) {
    memset(out, 0, sizeof(*out));
    if (data == NULL || length == 0) {
        snprintf(out->message, sizeof(out->message), "empty PNG data");
        return SN_ERR_EMPTY;
    }
    png_image image;
    memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, length)) {
        snprintf(out->message, sizeof(out->message), "invalid PNG: %s", image.message);
        png_image_free(&image);
        return SN_ERR_CORRUPT;
    }
    uint64_t w = image.width, h = image.height;
    if (w == 0 || h == 0) {
        png_image_free(&image);
        snprintf(out->message, sizeof(out->message), "PNG has zero width or height");
        return SN_ERR_EMPTY;
    }
    if (w * h > max_pixels) {
        png_image_free(&image);
        snprintf(out->message, sizeof(out->message),
                 "PNG is %llux%llu = %llu pixels, over the limit of %llu",
                 (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                 (unsigned long long)max_pixels);
        return SN_ERR_TOO_LARGE;
    }
    int channels = want_gray ? 1 : 3;
    // The simplified API treats 16-bit samples as linear light and would gamma-encode them to
    // 8-bit sRGB, brightening them. Like most tools we keep the stored values instead: read the
    // 16-bit samples unchanged and keep their high byte (rounded).
    int sixteen = (image.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    if (sixteen) {
        image.format = want_gray ? PNG_FORMAT_LINEAR_Y : PNG_FORMAT_LINEAR_RGB;
    } else {
        image.format = want_gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    }
    size_t samples = (size_t)w * (size_t)h * (size_t)channels;
    size_t bytes = samples * (sixteen ? 2 : 1);
    uint8_t *buffer = malloc(bytes);
    if (buffer == NULL) {
        png_image_free(&image);
        snprintf(out->message, sizeof(out->message), "out of memory decoding PNG");
        return SN_ERR_NOMEM;
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&image, &black, buffer, 0, NULL)) {
        snprintf(out->message, sizeof(out->message), "invalid PNG: %s", image.message);
        free(buffer);
        png_image_free(&image);
        return SN_ERR_CORRUPT;
    }
    uint8_t *pixels = buffer;
    if (sixteen) {
        const uint16_t *wide = (const uint16_t *)buffer;
        pixels = malloc(samples);
        if (pixels == NULL) {
            free(buffer);
            snprintf(out->message, sizeof(out->message), "out of memory decoding PNG");
            return SN_ERR_NOMEM;
        }
        for (size_t i = 0; i < samples; i++) pixels[i] = (uint8_t)(((uint32_t)wide[i] * 255u + 32767u) / 65535u);
        free(buffer);
    }
    out->width = (int32_t)w;
    out->height = (int32_t)h;
    out->channels = channels;
    out->pixels = pixels;
    return SN_OK;
}
