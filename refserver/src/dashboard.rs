//! The HTML dashboard at `/`: one card per project, a kanban board of work
//! packages per feature, refreshed live.
//!
//! One renderer (this module, server side) produces the board; the page's
//! small script polls `/dashboard/fragment` every second and swaps it in.
//! So the first response is already complete (a headless browser or `curl`
//! sees the data without running JavaScript) and there is no second
//! renderer in JavaScript to drift. No external assets: it must work
//! offline.
//!
//! Stable hooks for browser tests: `section.project[data-project-uuid]`,
//! `[data-project-slug]`, `div.feature[data-feature-slug]`,
//! `div.lane[data-lane]`, `div.wp[data-wp-id][data-lane]`.

use std::fmt::Write as _;

use crate::view::{sorted_projects, View, NO_FEATURE};

/// Lanes always shown, in board order; others appear only when occupied.
const BOARD_LANES: [&str; 4] = ["planned", "in_progress", "for_review", "done"];
const OTHER_LANES: [&str; 3] = ["claimed", "blocked", "canceled"];

use spec_kitty_protocol::html::escape as esc;

fn lane_title(lane: &str) -> &str {
    match lane {
        "planned" => "Planned",
        "claimed" => "Claimed",
        "in_progress" => "Doing",
        "for_review" => "For review",
        "done" => "Done",
        "blocked" => "Blocked",
        "canceled" => "Canceled",
        other => other,
    }
}

/// The live part of the page: every project card.
pub fn fragment(view: &View) -> String {
    let projects = sorted_projects(view, None, None);
    let mut h = String::new();
    if projects.is_empty() {
        h.push_str("<p class=\"empty\">No events received yet.</p>");
        return h;
    }
    for p in projects {
        let slug = p.project_slug.as_deref().unwrap_or("(no slug)");
        let _ = write!(
            h,
            "<section class=\"project\" data-project-uuid=\"{}\" data-project-slug=\"{}\">\
             <header><h2>{}</h2><div class=\"meta\">team <b>{}</b> · {} events · last event {} \
             <span class=\"uuid\">{}</span></div></header>",
            esc(&p.project_uuid),
            esc(slug),
            esc(slug),
            esc(&p.team_slug),
            p.event_count,
            esc(p.last_event_at.as_deref().unwrap_or("-")),
            esc(&p.project_uuid),
        );
        if p.features.is_empty() {
            h.push_str("<p class=\"empty\">No features yet.</p>");
        }
        for f in p.features.values() {
            let title = if f.feature_slug == NO_FEATURE {
                "(no feature)"
            } else {
                &f.feature_slug
            };
            let _ = write!(
                h,
                "<div class=\"feature\" data-feature-slug=\"{}\"><h3>{}{}</h3><div class=\"board\">",
                esc(&f.feature_slug),
                esc(title),
                if f.completed { " ✓" } else { "" }
            );
            let lanes = BOARD_LANES.iter().chain(OTHER_LANES.iter()).filter(|l| {
                BOARD_LANES.contains(l) || f.work_packages.values().any(|w| w.lane == **l)
            });
            for lane in lanes {
                let wps: Vec<_> = f
                    .work_packages
                    .values()
                    .filter(|w| w.lane == *lane)
                    .collect();
                let _ = write!(
                    h,
                    "<div class=\"lane\" data-lane=\"{lane}\"><h4>{} <span class=\"n\">{}</span></h4>",
                    lane_title(lane),
                    wps.len()
                );
                for w in wps {
                    let _ = write!(
                        h,
                        "<div class=\"wp\" data-wp-id=\"{}\" data-lane=\"{}\"><b>{}</b> {}</div>",
                        esc(&w.wp_id),
                        esc(&w.lane),
                        esc(&w.wp_id),
                        esc(w.title.as_deref().unwrap_or(""))
                    );
                }
                h.push_str("</div>");
            }
            h.push_str("</div></div>");
        }
        h.push_str("</section>");
    }
    h
}

/// The whole page with `fragment` already in it.
pub fn page(fragment: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spec-kitty reference server</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #172b4d; }}
body > header {{ background: #253858; color: #fff; padding: 10px 20px; }}
body > header h1 {{ font-size: 18px; margin: 0; }}
main {{ padding: 16px 20px; }}
section.project {{ background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); margin-bottom: 16px; padding: 12px 16px; }}
section.project h2 {{ margin: 0; font-size: 17px; }}
.meta {{ color: #5e6c84; font-size: 12px; }} .uuid {{ font-family: monospace; }}
.feature h3 {{ font-size: 14px; margin: 12px 0 6px; }}
.board {{ display: flex; gap: 8px; overflow-x: auto; }}
.lane {{ background: #ebecf0; border-radius: 6px; padding: 6px; min-width: 150px; flex: 1; }}
.lane h4 {{ margin: 0 0 6px; font-size: 12px; text-transform: uppercase; color: #5e6c84; }}
.n {{ background: #dfe1e6; border-radius: 8px; padding: 0 6px; }}
.wp {{ background: #fff; border-radius: 4px; padding: 6px; margin-bottom: 6px; box-shadow: 0 1px 1px rgba(0,0,0,.1); }}
.lane[data-lane=done] .wp {{ border-left: 3px solid #36b37e; }}
.lane[data-lane=in_progress] .wp {{ border-left: 3px solid #0065ff; }}
.lane[data-lane=for_review] .wp {{ border-left: 3px solid #ffab00; }}
.empty {{ color: #5e6c84; }} #status {{ font-size: 12px; opacity: .8; }}
</style></head>
<body><header><h1>spec-kitty reference server</h1><div id="status">live</div></header>
<main id="projects">{fragment}</main>
<script>
async function refresh() {{
  try {{
    const r = await fetch('/dashboard/fragment', {{cache: 'no-store'}});
    if (r.ok) {{
      const html = await r.text();
      const main = document.getElementById('projects');
      if (main.innerHTML !== html) main.innerHTML = html;
      document.getElementById('status').textContent = 'live · updated ' + new Date().toLocaleTimeString();
    }}
  }} catch (e) {{
    document.getElementById('status').textContent = 'server unreachable, retrying';
  }}
}}
setInterval(refresh, 1000);
</script></body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_untrusted_text() {
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        assert!(fragment(&View::default()).contains("No events"));
    }
}
