/// Image dimensions read from the header alone (no pixel data), for admission control: what a
/// decode will cost is known before any work starts.
public enum ImageHeader {
    /// Width × height from a PNG's IHDR or a JPEG's first SOFn segment; nil when the header cannot
    /// be read (the decoder then reports the real problem).
    public static func pixelCount(_ bytes: [UInt8]) -> Int? {
        switch ImageFormat.detect(bytes) {
        case .png?:
            // Signature (8), IHDR length (4) and type (4), then width and height, big-endian.
            guard bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
            let w = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }, h = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
            return product(w, h)
        case .jpeg?:
            var i = 2
            while i + 4 <= bytes.count {
                guard bytes[i] == 0xFF else { return nil }
                let marker = bytes[i + 1]
                if marker == 0xFF { i += 1; continue }  // fill byte
                if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
                let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
                guard length >= 2 else { return nil }
                // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
                if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                    guard i + 9 <= bytes.count else { return nil }
                    let h = Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]), w = Int(bytes[i + 7]) << 8 | Int(bytes[i + 8])
                    return product(w, h)
                }
                if marker == 0xDA { return nil }  // scan data before any frame header
                i += 2 + length
            }
            return nil
        case nil:
            return nil
        }
    }

    /// w × h, or Int.max when it overflows (a header may claim any size; the decoder refuses it).
    static func product(_ w: Int, _ h: Int) -> Int {
        let (p, overflow) = w.multipliedReportingOverflow(by: h)
        return overflow ? Int.max : p
    }
}
