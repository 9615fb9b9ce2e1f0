//! The download page a customer's phone opens: plain HTML and CSS (no script), sized for a phone,
//! in the customer's language, with the composed page and each shot, each one a tap away from
//! being saved. Also the "expired" and "no such link" pages.

use crate::config::Language;

use super::File;

/// What the page shows.
pub struct PageData<'a> {
    pub token: &'a str,
    pub booth_name: &'a str,
    pub shots: u32,
    /// Whole hours the link still works (at least 1 while it works).
    pub hours_left: i64,
}

struct Words {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    page: &'static str,
    photo: &'static str,
    save: &'static str,
    full: &'static str,
    hours_left: &'static str,
    expired_title: &'static str,
    expired_text: &'static str,
    missing_title: &'static str,
    missing_text: &'static str,
    gallery_intro: &'static str,
    all_zip: &'static str,
    days_left: &'static str,
    gallery_running: &'static str,
    gallery_empty: &'static str,
}

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::Uz => &Words {
            lang: "uz",
            title: "Suratlaringiz",
            intro: "Rasmni saqlash uchun «Saqlash» tugmasini bosing.",
            page: "Tayyor sahifa",
            photo: "Surat",
            save: "Saqlash",
            full: "Asl o‘lcham",
            hours_left: "Havola yana {h} soat ishlaydi.",
            expired_title: "Havolaning muddati tugagan",
            expired_text: "Bu suratlar endi mavjud emas. Bizga tashrif buyurganingiz uchun rahmat!",
            missing_title: "Bunday havola yo‘q",
            missing_text: "Manzilni tekshiring yoki QR kodni qayta skanerlang.",
            gallery_intro: "Tadbirning barcha suratlari. Hammasini bitta ZIP faylda yuklab olish mumkin.",
            all_zip: "Hammasini yuklab olish (ZIP)",
            days_left: "Galereya yana {d} kun ishlaydi.",
            gallery_running: "Tadbir davom etmoqda: yangi suratlar shu yerda paydo bo‘ladi.",
            gallery_empty: "Hali suratlar yo‘q.",
        },
        Language::Ru => &Words {
            lang: "ru",
            title: "Ваши фотографии",
            intro: "Нажмите «Сохранить», чтобы сохранить снимок в телефон.",
            page: "Готовая страница",
            photo: "Фото",
            save: "Сохранить",
            full: "Полный размер",
            hours_left: "Ссылка работает ещё {h} ч.",
            expired_title: "Срок действия ссылки истёк",
            expired_text: "Эти фотографии больше недоступны. Спасибо, что были у нас!",
            missing_title: "Такой ссылки нет",
            missing_text: "Проверьте адрес или отсканируйте QR-код ещё раз.",
            gallery_intro: "Все фотографии праздника. Их можно скачать одним ZIP-файлом.",
            all_zip: "Скачать все (ZIP)",
            days_left: "Галерея работает ещё {d} дн.",
            gallery_running: "Праздник идёт: новые фотографии появляются здесь.",
            gallery_empty: "Фотографий пока нет.",
        },
        Language::En => &Words {
            lang: "en",
            title: "Your photos",
            intro: "Tap “Save” to keep a picture on your phone.",
            page: "The printed page",
            photo: "Photo",
            save: "Save",
            full: "Full size",
            hours_left: "This link works for {h} more hours.",
            expired_title: "This link has expired",
            expired_text: "These photos are no longer available. Thank you for visiting!",
            missing_title: "This link does not exist",
            missing_text: "Check the address or scan the QR code again.",
            gallery_intro: "Every photo of the event. You can download them all in one ZIP file.",
            all_zip: "Download all (ZIP)",
            days_left: "This gallery works for {d} more days.",
            gallery_running: "The event is on: new photos appear here.",
            gallery_empty: "No photos yet.",
        },
    }
}

/// The customer's language from the phone's `Accept-Language`, else the booth's.
pub fn language(accept_language: Option<&str>, fallback: Language) -> Language {
    let Some(header) = accept_language else { return fallback };
    let mut best: Option<(f32, Language)> = None;
    for part in header.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
            .unwrap_or(1.0);
        let lang = match tag.split('-').next().unwrap_or("") {
            "uz" => Language::Uz,
            "ru" => Language::Ru,
            "en" => Language::En,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(fallback, |(_, l)| l)
}

const STYLE: &str = "body{margin:0;font-family:system-ui,sans-serif;background:#111;color:#eee;\
line-height:1.4}main{max-width:640px;margin:0 auto;padding:16px}h1{font-size:1.5rem;margin:8px 0}\
p{margin:8px 0;color:#bbb}figure{margin:20px 0;background:#1d1d1d;border-radius:12px;overflow:hidden}\
img{display:block;width:100%;height:auto}figcaption{display:flex;flex-wrap:wrap;gap:8px;\
align-items:center;padding:10px}figcaption span{flex:1 1 100%;font-weight:600}\
a.btn{flex:1;text-align:center;padding:14px 8px;border-radius:10px;background:#2f7cf6;color:#fff;\
text-decoration:none;font-weight:600;min-width:120px}a.alt{background:#333}";

fn shell(w: &Words, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>",
        lang = w.lang,
        title = escape(title),
    )
}

/// The page with the photos.
pub fn photos(data: &PageData<'_>, lang: Language) -> String {
    let w = words(lang);
    let mut body = format!(
        "<h1>{}</h1><p>{}</p><p>{}</p>",
        escape(&format!("{} · {}", w.title, data.booth_name)),
        escape(w.intro),
        escape(&w.hours_left.replace("{h}", &data.hours_left.max(1).to_string())),
    );
    let files = std::iter::once(File::Page).chain((1..=data.shots).map(File::Photo));
    for file in files {
        body.push_str(&figure(w, &format!("/d/{}", data.token), file, None));
    }
    shell(w, w.title, &body)
}

/// One picture with its "save" and "full size" buttons; `base` is the folder of its URL.
fn figure(w: &Words, base: &str, file: File, order_id: Option<i64>) -> String {
    let name = file.url_name();
    let what = match file {
        File::Page => w.page.to_string(),
        File::Photo(n) => format!("{} {n}", w.photo),
    };
    let caption = match order_id {
        Some(id) => format!("№ {id} · {what}"),
        None => what,
    };
    format!(
        "<figure><img src=\"{base}/{name}\" alt=\"{c}\" loading=\"lazy\"><figcaption><span>{c}</span>\
<a class=\"btn\" href=\"{base}/{name}?download=1\" download>{save}</a>\
<a class=\"btn alt\" href=\"{base}/{name}?full=1&amp;download=1\" download>{full}</a></figcaption></figure>",
        c = escape(&caption),
        save = escape(w.save),
        full = escape(w.full),
    )
}

/// What the event gallery's page shows.
pub struct GalleryData<'a> {
    pub token: &'a str,
    /// The event's title, else the booth's name.
    pub title: &'a str,
    /// Each order with its pictures, oldest first.
    pub orders: Vec<(i64, Vec<File>)>,
    /// The "download all" archives (`photos-N.zip`).
    pub zip_parts: usize,
    /// Whole days the gallery still works; `None` while the event runs.
    pub days_left: Option<i64>,
}

/// The event gallery: every order's pictures, the same look as an order's page, and "download
/// all" as one ZIP (or a few, for a very large event).
pub fn gallery(data: &GalleryData<'_>, lang: Language) -> String {
    let w = words(lang);
    let lifetime = match data.days_left {
        Some(d) => w.days_left.replace("{d}", &d.max(1).to_string()),
        None => w.gallery_running.to_string(),
    };
    let mut body = format!(
        "<h1>{}</h1><p>{}</p><p>{}</p>",
        escape(data.title),
        escape(w.gallery_intro),
        escape(&lifetime),
    );
    if data.orders.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(w.gallery_empty)));
    } else {
        body.push_str("<figure><figcaption>");
        for part in 1..=data.zip_parts {
            let label = match data.zip_parts {
                1 => w.all_zip.to_string(),
                n => format!("{} {part}/{n}", w.all_zip),
            };
            body.push_str(&format!(
                "<a class=\"btn\" href=\"/d/{}/{}\" download>{}</a>",
                data.token,
                super::gallery::zip_name(part),
                escape(&label)
            ));
        }
        body.push_str("</figcaption></figure>");
    }
    for (order_id, files) in &data.orders {
        let base = format!("/d/{}/{order_id}", data.token);
        for file in files {
            body.push_str(&figure(w, &base, *file, Some(*order_id)));
        }
    }
    shell(w, data.title, &body)
}

/// 410: the link worked once and has expired.
pub fn expired(lang: Language) -> String {
    let w = words(lang);
    let body = format!("<h1>{}</h1><p>{}</p>", escape(w.expired_title), escape(w.expired_text));
    shell(w, w.expired_title, &body)
}

/// 404: no such link (never was, or taken away by a refund).
pub fn missing(lang: Language) -> String {
    let w = words(lang);
    let body = format!("<h1>{}</h1><p>{}</p>", escape(w.missing_title), escape(w.missing_text));
    shell(w, w.missing_title, &body)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_phones_language_by_preference() {
        assert_eq!(language(Some("ru-RU,ru;q=0.9,en;q=0.8"), Language::Uz), Language::Ru);
        assert_eq!(language(Some("de-DE,en;q=0.5,uz;q=0.7"), Language::Ru), Language::Uz);
        assert_eq!(language(Some("de-DE"), Language::En), Language::En);
        assert_eq!(language(None, Language::Uz), Language::Uz);
    }

    #[test]
    fn the_page_links_every_file_and_escapes_the_name() {
        let html = photos(
            &PageData {
                token: "abc",
                booth_name: "<Booth>",
                shots: 2,
                hours_left: 3,
            },
            Language::En,
        );
        for file in ["page.jpg", "photo-1.jpg", "photo-2.jpg"] {
            assert!(html.contains(&format!("/d/abc/{file}?download=1")), "{file}");
        }
        assert!(html.contains("&lt;Booth&gt;"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_gallery_links_every_orders_files_and_the_zip() {
        let data = GalleryData {
            token: "tok",
            title: "Aziza & Bobur",
            orders: vec![(3, vec![File::Page, File::Photo(1)]), (5, vec![File::Page])],
            zip_parts: 1,
            days_left: None,
        };
        let html = gallery(&data, Language::Ru);
        for file in [
            "/d/tok/3/page.jpg",
            "/d/tok/3/photo-1.jpg",
            "/d/tok/5/page.jpg",
            "/d/tok/photos-1.zip",
        ] {
            assert!(html.contains(file), "{file} in {html}");
        }
        assert!(html.contains("Aziza &amp; Bobur") && html.contains("Скачать все (ZIP)"));
        assert!(!html.contains("<script"));
    }
}
