//! `spec-kitty tasks add TITLE` (→ WPCreated) and `spec-kitty tasks
//! finalize` (→ one WPCreated per WP file never announced, sharing one
//! causation_id). Which WPs were announced is recorded in the feature's
//! `meta.json` (`announced_wps`), so finalize never announces twice, on
//! this machine or any other that pulls the repository.

use super::{rel, Ctx};
use crate::cli::{FeatureArgs, TasksAddArgs};
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::identity::kebab;
use crate::output::Out;
use crate::wpfile::{self, WpFile};
use crate::yamltext;
use spec_kitty_protocol::envelope::{Payload, WpCreated};

pub fn add(out: &Out, a: TasksAddArgs) -> Result<(), CliError> {
    let title = a.title.trim().to_string();
    if title.is_empty() {
        return Err(CliError::invalid(
            "the work package title must not be empty",
        ));
    }
    let deps: Vec<String> = a
        .depends
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    for d in &deps {
        feature::check_wp_id(d)?;
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let _lock = feature::lock_feature(&feat)?;
    for d in &deps {
        feature::find_wp(&feat, d)?;
    }
    let next = next_wp_number(&feat)?;
    let wp_id = format!("WP{next:02}");
    let mut name = kebab(&title);
    name.truncate(60);
    let name = name.trim_end_matches('-');
    let file = feat.tasks_dir().join(if name.is_empty() {
        format!("{wp_id}.md")
    } else {
        format!("{wp_id}-{name}.md")
    });
    let text = render_wp(&wp_id, &title, &deps);
    // The template must read back as what we meant.
    let parsed = WpFile::parse(&file, text.clone())?;
    debug_assert_eq!(parsed.meta.wp_id, wp_id);
    let env = ctx.emitter.build(
        &Payload::WPCreated(WpCreated {
            wp_id: wp_id.clone(),
            title: title.clone(),
            feature_slug: feat.slug.clone(),
            dependencies: deps.clone(),
        }),
        None,
    )?;
    let (meta_text, meta) = feature::read_meta(&feat)?;
    let mut announced = feature::announced(&meta);
    announced.push(wp_id.clone());
    let mut changes = Changes::new(&ctx.project.root);
    changes.create(&file, text);
    let new_meta = feature::meta_with(
        &feat,
        &meta_text,
        "announced_wps",
        serde_json::json!(announced),
    )?;
    if meta_text.is_empty() {
        changes.create(&feat.meta_path(), new_meta);
    } else {
        changes.replace(&feat.meta_path(), &meta_text, new_meta);
    }
    let deliveries = changes.commit(&ctx.emitter, std::slice::from_ref(&env), &mut ctx.warner())?;
    out.line(&format!(
        "{} Added {} {} ({})",
        out.green("✓"),
        out.bold(&wp_id),
        title,
        rel(&ctx, &file)
    ));
    out.json(&serde_json::json!({
        "result": "success",
        "feature": feat.slug,
        "wp_id": wp_id,
        "title": title,
        "dependencies": deps,
        "path": file.display().to_string(),
        "events": events_json(&[env], &deliveries),
    }));
    Ok(())
}

fn next_wp_number(feat: &Feature) -> Result<u32, CliError> {
    let max = feature::wp_paths(feat)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.get(2..4)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    if max >= 99 {
        return Err(CliError::invalid(format!(
            "{} already holds WP99; work package ids stop at two digits",
            feat.tasks_dir().display()
        )));
    }
    Ok(max + 1)
}

/// A new WP file in the shape of the corpus (spec-kitty 2.x).
pub fn render_wp(wp_id: &str, title: &str, deps: &[String]) -> String {
    let ts = wpfile::file_timestamp();
    let created = spec_kitty_protocol::time::now_utc();
    let deps_text = if deps.is_empty() {
        "[]".to_string()
    } else {
        format!("[{}]", deps.join(", "))
    };
    format!(
        "---\nwork_package_id: {wp_id}\ntitle: {}\nlane: \"planned\"\ndependencies: {deps_text}\ncreated_at: '{created}'\nsubtasks: []\nassignee: ''\nagent: ''\nshell_pid: ''\nreview_status: ''\nreviewed_by: ''\nhistory:\n- timestamp: '{ts}'\n  lane: planned\n  agent: system\n  shell_pid: ''\n  action: Prompt generated via spec-kitty tasks add\n---\n\n# Work Package Prompt: {wp_id} – {title}\n\n## Objectives & Success Criteria\n\n## Subtasks & Detailed Guidance\n\n## Activity Log\n\n{}\n",
        yamltext::scalar(title),
        wpfile::activity_line(&ts, "system", "", "planned", "Prompt created.")
    )
}

pub fn finalize(out: &Out, a: FeatureArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let _lock = feature::lock_feature(&feat)?;
    let wps = feature::load_wps(&feat)?;
    let (meta_text, meta) = feature::read_meta(&feat)?;
    let mut announced = feature::announced(&meta);
    let fresh: Vec<&WpFile> = wps
        .iter()
        .filter(|w| {
            !announced.contains(&w.meta.wp_id) && !super::finalize::announced_by_finalize(w)
        })
        .collect();
    if fresh.is_empty() {
        out.line(&format!(
            "Nothing to announce: all {} work packages of {} were announced.",
            wps.len(),
            feat.slug
        ));
        out.json(&serde_json::json!({"result": "success", "feature": feat.slug, "announced": [], "events": []}));
        return Ok(());
    }
    let causation = spec_kitty_protocol::identity::new_ulid();
    let mut envs = Vec::with_capacity(fresh.len());
    for w in &fresh {
        let deps: Vec<String> = w
            .meta
            .dependencies
            .iter()
            .filter(|d| spec_kitty_protocol::envelope::is_wp_id(d))
            .cloned()
            .collect();
        envs.push(ctx.emitter.build(
            &Payload::WPCreated(WpCreated {
                wp_id: w.meta.wp_id.clone(),
                title: w.meta.title.clone(),
                feature_slug: feat.slug.clone(),
                dependencies: deps,
            }),
            Some(causation.clone()),
        )?);
    }
    let ids: Vec<String> = fresh.iter().map(|w| w.meta.wp_id.clone()).collect();
    announced.extend(ids.iter().cloned());
    let new_meta = feature::meta_with(
        &feat,
        &meta_text,
        "announced_wps",
        serde_json::json!(announced),
    )?;
    let mut changes = Changes::new(&ctx.project.root);
    if meta_text.is_empty() {
        changes.create(&feat.meta_path(), new_meta);
    } else {
        changes.replace(&feat.meta_path(), &meta_text, new_meta);
    }
    let deliveries = changes.commit(&ctx.emitter, &envs, &mut ctx.warner())?;
    out.line(&format!(
        "{} Announced {} work package(s) of {}: {}",
        out.green("✓"),
        ids.len(),
        feat.slug,
        ids.join(", ")
    ));
    out.json(&serde_json::json!({
        "result": "success",
        "feature": feat.slug,
        "announced": ids,
        "causation_id": causation,
        "events": events_json(&envs, &deliveries),
    }));
    Ok(())
}
