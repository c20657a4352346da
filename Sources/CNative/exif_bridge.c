#include "CNative.h"
#include <libexif/exif-data.h>
#include <stdlib.h>
#include <string.h>

int sn_exif_orientation(const uint8_t *data, size_t length, int is_tiff) {
    if (!data || length == 0 || length > (64u << 20)) return 1;
    ExifData *exif = exif_data_new();
    if (!exif) return 1;
    // libexif reads a JPEG stream or data starting with the "Exif\0\0" header; a PNG eXIf chunk
    // holds the TIFF structure alone, so give it the header.
    static const uint8_t header[6] = {'E', 'x', 'i', 'f', 0, 0};
    uint8_t *buffer = NULL;
    const uint8_t *input = data;
    size_t input_length = length;
    if (is_tiff && !(length >= 6 && memcmp(data, header, 6) == 0)) {
        buffer = malloc(length + 6);
        if (!buffer) { exif_data_unref(exif); return 1; }
        memcpy(buffer, header, 6);
        memcpy(buffer + 6, data, length);
        input = buffer;
        input_length = length + 6;
    }
    exif_data_unset_option(exif, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);  // read, never "fix" the data
    exif_data_load_data(exif, input, (unsigned int)input_length);
    int orientation = 1;
    ExifEntry *entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (entry && entry->format == EXIF_FORMAT_SHORT && entry->components >= 1 && entry->data && entry->size >= 2) {
        int value = exif_get_short(entry->data, exif_data_get_byte_order(exif));
        if (value >= 1 && value <= 8) orientation = value;
    }
    exif_data_unref(exif);
    free(buffer);
    return orientation;
}
