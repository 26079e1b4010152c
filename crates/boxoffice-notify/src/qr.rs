//! Ticket QR codes as PNG images, the format every mail client shows inline (Gmail and Outlook
//! show no SVG): one byte per pixel, black on white, with the standard four-module quiet zone.

use qrcode::{Color, QrCode};

/// Pixels per QR module.
const SCALE: usize = 6;
/// Modules of white border on each side, as the QR standard asks.
const QUIET_ZONE: usize = 4;

/// Why a QR image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The text does not fit a QR code.
    #[error("{0}")]
    Code(#[from] qrcode::types::QrError),
    /// The PNG encoder failed.
    #[error("{0}")]
    Png(#[from] png::EncodingError),
}

/// `text` as a PNG QR code.
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = QrCode::new(text.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (
            (i % modules + QUIET_ZONE) * SCALE,
            (i / modules + QUIET_ZONE) * SCALE,
        );
        for row in y..y + SCALE {
            pixels[row * side + x..row * side + x + SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    let side_u32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_code_becomes_a_decodable_png_with_dark_modules() {
        let bytes = png("TK-7QX2-9MPA-4CDE").unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = ::png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let modules = QrCode::new(b"TK-7QX2-9MPA-4CDE").unwrap().width();
        assert_eq!(info.width as usize, (modules + 2 * QUIET_ZONE) * SCALE);
        assert_eq!(info.width, info.height);
        let pixels = &buf[..info.buffer_size()];
        // The quiet zone is white; the top-left finder pattern starts dark just inside it.
        assert_eq!(pixels[0], 255);
        let corner = QUIET_ZONE * SCALE;
        assert_eq!(pixels[corner * info.width as usize + corner], 0);
        assert!(pixels.iter().all(|p| *p == 0 || *p == 255));
    }

    /// The decoded image is the code: every module's block of pixels has the module's colour,
    /// so a scanner reads the same text the matrix encodes.
    #[test]
    fn every_module_is_drawn_as_a_block_of_its_colour() {
        let text = "TKT9XH2M";
        let bytes = png(text).unwrap();
        let mut reader = ::png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let side = info.width as usize;
        let code = QrCode::new(text.as_bytes()).unwrap();
        let modules = code.width();
        assert_eq!(side, (modules + 2 * QUIET_ZONE) * SCALE);
        let colors = code.to_colors();
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = (x / SCALE, y / SCALE);
                let inside = (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
                    && (QUIET_ZONE..QUIET_ZONE + modules).contains(&my);
                let dark = inside
                    && colors[(my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)] == Color::Dark;
                let expected = if dark { 0 } else { 255 };
                assert_eq!(buf[y * side + x], expected, "pixel ({x}, {y})");
            }
        }
    }
}
