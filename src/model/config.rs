//! The operator's deployment.toml settings, kept across the profile's
//! template: carried keys from the home's own file, `--set` values and
//! `--overlay` files. Edits go through toml_edit so that the template's
//! comments, key order and formatting stay as they were except for the values
//! that change; the result must parse, and keys the product does not know are
//! allowed but reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use toml_edit::{DocumentMut, Item, Table};

use crate::model::facts::VersionFacts;
use crate::model::secret::{is_secret_key, MASK};
use crate::model::tree;
use crate::outcome::Refusal;

/// Settings carried into, set in or overlaid on each profile's deployment.toml.
#[derive(Debug, Clone, Default)]
pub struct ConfigEdits {
    pub carry: Vec<String>,
    /// `--carry-common`: the version's carry-common set (see `VersionFacts`),
    /// each only where the home sets it.
    pub carry_common: bool,
    pub sets: Vec<SetEdit>,
    pub overlays: Vec<Overlay>,
}

#[derive(Debug, Clone)]
pub struct SetEdit {
    pub profile: Option<String>,
    pub key: String,
    /// In TOML syntax.
    pub value: String,
    /// The argument as given, for messages (never printed when secret).
    pub arg: String,
}

#[derive(Debug, Clone)]
pub struct Overlay {
    pub profile: Option<String>,
    pub path: PathBuf,
    pub text: String,
}

/// The result of editing a template.
#[derive(Debug, Clone)]
pub struct Edited {
    pub text: String,
    pub warnings: Vec<String>,
}

impl ConfigEdits {
    pub fn is_empty(&self) -> bool {
        self.carry.is_empty() && !self.carry_common && self.sets.is_empty() && self.overlays.is_empty()
    }

    /// A stable text of the edits, for the options hash (never stored as is).
    pub fn canonical(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut s = format!("carry={:?};common={};", self.carry, self.carry_common);
        for e in &self.sets {
            s.push_str(&format!("set={:?}:{}={};", e.profile, e.key, e.value));
        }
        for o in &self.overlays {
            s.push_str(&format!("overlay={:?}:{};", o.profile, tree::sha256_hex(o.text.as_bytes())));
        }
        s
    }

    /// `[PROFILE:]dotted.key=VALUE`.
    pub fn parse_set(arg: &str, profiles: &[&str]) -> Result<SetEdit> {
        let Some((lhs, value)) = arg.split_once('=') else {
            return Err(Refusal::new(
                format!("--set {}: no `=`", shown_arg(arg)),
                "write --set [PROFILE:]dotted.key=VALUE, e.g. --set server.hostname='\"gw1.example.com\"'",
            )
            .into());
        };
        let (profile, key) = match lhs.split_once(':') {
            Some((p, k)) => (Some(p.trim().to_string()), k.trim().to_string()),
            None => (None, lhs.trim().to_string()),
        };
        if let Some(p) = &profile {
            if !profiles.contains(&p.as_str()) {
                return Err(Refusal::new(
                    format!("--set {}: unknown profile `{p}`", shown_arg(arg)),
                    format!("known profiles: {}", profiles.join(", ")),
                )
                .into());
            }
        }
        check_key(&key, &format!("--set {}", shown_arg(arg)))?;
        parse_value(value.trim(), arg)?;
        Ok(SetEdit { profile, key, value: value.trim().to_string(), arg: arg.to_string() })
    }

    /// Refuses a setting for a profile that is not in this run: it would be
    /// silently dropped. `flag` is how the run names its profiles.
    pub fn check_in_run(&self, run: &[&str], flag: &str) -> Result<()> {
        let named = self
            .sets
            .iter()
            .filter_map(|s| s.profile.as_ref().map(|p| (p, format!("--set {}", shown_arg(&s.arg)))))
            .chain(
                self.overlays
                    .iter()
                    .filter_map(|o| o.profile.as_ref().map(|p| (p, format!("--overlay {p}={}", o.path.display())))),
            );
        for (p, given) in named {
            if !run.contains(&p.as_str()) {
                return Err(Refusal::new(
                    format!("{given} is for profile `{p}`, which is not in this run ({flag} {})", run.join(",")),
                    format!("add {p} to {flag}, or drop the setting"),
                )
                .into());
            }
        }
        Ok(())
    }

    /// `[PROFILE=]FILE.toml`, read and checked now.
    pub fn parse_overlay(arg: &str, profiles: &[&str]) -> Result<Overlay> {
        let (profile, file) = match arg.split_once('=') {
            Some((p, f)) if profiles.contains(&p) => (Some(p.to_string()), f),
            _ => (None, arg),
        };
        let path = PathBuf::from(file);
        // A FIFO or device is refused before a read could block.
        let bytes = crate::safe_fs::read_regular(&path, "--overlay")?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Refusal::new(
                format!("--overlay {}: not UTF-8 text", path.display()),
                "give a TOML file, optionally prefixed with PROFILE=",
            )
        })?;
        check_toml(&text, &path)?;
        Ok(Overlay { profile, path, text })
    }
}

/// The argument as an error shows it: the key only. A value that was refused
/// is never echoed, whatever the key: it may be a secret under any name.
fn shown_arg(arg: &str) -> String {
    match arg.split_once('=') {
        Some((k, _)) => format!("{k}=<value not shown>"),
        None => arg.to_string(),
    }
}

fn check_key(key: &str, what: &str) -> Result<()> {
    if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
        return Err(Refusal::new(
            format!("{what}: `{key}` is not a dotted key"),
            "write keys as table.sub.key, e.g. apim.key_manager.service_url",
        )
        .into());
    }
    Ok(())
}

fn parse_value(value: &str, arg: &str) -> Result<toml_edit::Value> {
    let doc: DocumentMut = format!("v = {value}\n").parse().map_err(|_| {
        Refusal::new(
            format!("--set {}: the value is not TOML", shown_arg(arg)),
            "strings need quotes, e.g. --set 'apim.key_manager.service_url=\"https://km:9443/services/\"'",
        )
    })?;
    if doc.len() != 1 {
        return Err(Refusal::new(
            format!("--set {}: trailing content after the value", shown_arg(arg)),
            "give one key and one value per --set (repeat --set for more), with nothing after the value",
        )
        .into());
    }
    match doc.get("v").and_then(Item::as_value) {
        Some(v) => Ok(v.clone()),
        None => Err(Refusal::new(
            format!("--set {}: the value is not a TOML value", shown_arg(arg)),
            "use a string, number, boolean or array",
        )
        .into()),
    }
}

/// Refuses text that is not valid TOML, naming file, line and column.
pub fn check_toml(text: &str, path: &Path) -> Result<()> {
    if let Err(e) = text.parse::<DocumentMut>() {
        let at = crate::model::text::at(text, e.span());
        let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        return Err(Refusal::new(
            format!("{}{at} is not valid TOML: {msg}", path.display()),
            "fix the line named (or restore the file from the product pack), then run again",
        )
        .into());
    }
    Ok(())
}

fn segments(key: &str) -> Vec<&str> {
    key.split('.').map(str::trim).collect()
}

/// The item at a dotted key, through tables and inline tables alike.
fn get(root: &Item, key: &str) -> Option<Item> {
    let mut cur = root.clone();
    for s in segments(key) {
        cur = match cur {
            Item::Table(t) => t.get(s)?.clone(),
            Item::Value(toml_edit::Value::InlineTable(t)) => Item::Value(t.get(s)?.clone()),
            _ => return None,
        };
    }
    Some(cur)
}

/// The table that holds the last segment of `key`, created as needed.
fn parent_table<'a>(doc: &'a mut DocumentMut, key: &str, what: &str) -> Result<(&'a mut Table, String)> {
    let segs = segments(key);
    let (last, path) = segs.split_last().expect("checked non-empty");
    let mut cur = doc.as_table_mut();
    for s in path {
        if !cur.contains_key(s) {
            let mut t = Table::new();
            t.set_implicit(true);
            cur.insert(s, Item::Table(t));
        }
        let item = cur.get_mut(s).expect("inserted");
        if let Item::Value(toml_edit::Value::InlineTable(it)) = item {
            // Make an inline table editable as a table, keeping its keys.
            let t = std::mem::take(it).into_table();
            *item = Item::Table(t);
        }
        cur = match item {
            Item::Table(t) => t,
            _ => {
                return Err(Refusal::new(
                    format!("{what}: `{s}` in `{key}` is a value in the template, not a table"),
                    "set the key itself, or a key below a table",
                )
                .into())
            }
        };
    }
    Ok((cur, last.to_string()))
}

/// Puts `new` at `key`, keeping the template's comments and position for a
/// table that was there.
fn put(doc: &mut DocumentMut, key: &str, mut new: Item, what: &str) -> Result<()> {
    let (table, last) = parent_table(doc, key, what)?;
    if let (Some(Item::Table(old)), Item::Table(nt)) = (table.get(&last), &mut new) {
        nt.decor_mut().clone_from(old.decor());
        if let Some(p) = old.position() {
            nt.set_position(p);
        }
    }
    match (table.get_mut(&last), new) {
        (Some(Item::Value(old)), Item::Value(mut v)) => {
            // Keep the template's spacing and trailing comment around the value.
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        (_, new) => {
            table.insert(&last, new);
        }
    }
    Ok(())
}

/// Tables merge key by key; anything else (values, arrays of tables) replaces.
fn merge(doc: &mut DocumentMut, prefix: &str, overlay: &Table, what: &str) -> Result<()> {
    for (k, v) in overlay.iter() {
        let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        let is_table_in_doc = matches!(get(doc.as_item(), &key), Some(Item::Table(_)));
        match v {
            Item::Table(t) if is_table_in_doc => merge(doc, &key, t, what)?,
            other => put(doc, &key, other.clone(), what)?,
        }
    }
    Ok(())
}

fn typo_warning(key: &str, facts: &VersionFacts) -> Option<String> {
    let root = segments(key)[0];
    let known = &facts.deployment_toml.known_tables;
    if known.is_empty() || known.iter().any(|k| k == root) {
        return None;
    }
    let nearest = known.iter().map(|k| (strsim::levenshtein(root, k), k.as_str())).min()?;
    let hint = if nearest.0 <= 3 { format!("; did you mean `{}`?", nearest.1) } else { String::new() };
    Some(format!("`{key}`: `{root}` is not a table API-M {} knows{hint} (kept as given)", facts.version))
}

/// Applies carry (from `home_toml`), then overlays, then sets (later wins) to
/// a profile's template.
pub fn apply(
    template: &str,
    home_toml: &str,
    profile: &str,
    edits: &ConfigEdits,
    facts: &VersionFacts,
) -> Result<Edited> {
    let mut doc: DocumentMut = template.parse()?;
    let mut warnings = Vec::new();
    let mut carry: Vec<(String, bool)> = edits.carry.iter().map(|k| (k.clone(), true)).collect();
    if edits.carry_common {
        carry.extend(facts.deployment_toml.carry_common.iter().map(|k| (k.clone(), false)));
    }
    if !carry.is_empty() {
        let home: DocumentMut = home_toml.parse().map_err(|_| {
            Refusal::new(
                "the home's deployment.toml is not valid TOML, so nothing can be carried from it",
                "fix it, or drop --carry",
            )
        })?;
        for (key, required) in carry {
            check_key(&key, &format!("--carry {key}"))?;
            match get(home.as_item(), &key) {
                Some(mut item) => {
                    if let Item::Table(t) = &mut item {
                        // Its place in the home's file means nothing in the template.
                        t.set_position(usize::MAX);
                    }
                    put(&mut doc, &key, item, &format!("--carry {key}"))?;
                }
                None if required => {
                    return Err(Refusal::new(
                        format!("--carry {key}: the home's deployment.toml does not set `{key}`"),
                        "carry only tables or keys the home's repository/conf/deployment.toml has (check the spelling)",
                    )
                    .into())
                }
                None => {}
            }
            warnings.extend(typo_warning(&key, facts));
        }
    }
    for o in edits.overlays.iter().filter(|o| o.profile.as_deref().is_none_or(|p| p == profile)) {
        let overlay: DocumentMut = o.text.parse()?;
        for (k, _) in overlay.iter() {
            warnings.extend(typo_warning(k, facts));
        }
        merge(&mut doc, "", overlay.as_table(), &format!("--overlay {}", o.path.display()))?;
    }
    for s in edits.sets.iter().filter(|s| s.profile.as_deref().is_none_or(|p| p == profile)) {
        let v = parse_value(&s.value, &s.arg)?;
        put(&mut doc, &s.key, Item::Value(v), &format!("--set {}", shown_arg(&s.arg)))?;
        warnings.extend(typo_warning(&s.key, facts));
    }
    let text = doc.to_string();
    text.parse::<DocumentMut>()
        .map_err(|e| anyhow::anyhow!("internal: the edited deployment.toml does not parse: {e}"))?;
    warnings.sort();
    warnings.dedup();
    Ok(Edited { text, warnings })
}

/// The operator's settings as they show in a deployment.toml apim-profiles
/// wrote (`ours`) over the profile's template it was written from: every key
/// whose value differs from the template's, as an overlay (keys in `carried`
/// left out: they are carried again from the home's file). Re-applied to an
/// updated template, it gives what the same settings give there, without the
/// settings themselves being kept anywhere (they may hold secrets).
pub fn settings_overlay(ours: &str, template: &str, carried: &[String]) -> Result<String> {
    let mut doc: DocumentMut = ours.parse()?;
    let tpl: DocumentMut = template.parse()?;
    strip_same(doc.as_table_mut(), tpl.as_item(), "", carried);
    Ok(doc.to_string())
}

/// Removes from `t` every key equal to the template's (or carried), and the
/// tables left empty.
fn strip_same(t: &mut Table, tpl: &Item, prefix: &str, carried: &[String]) {
    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if carried.iter().any(|c| key == *c || key.starts_with(&format!("{c}."))) {
            t.remove(&k);
            continue;
        }
        let theirs = get(tpl, &key);
        let item = t.get_mut(&k).expect("listed");
        let drop = match (item, &theirs) {
            (Item::Table(sub), _) => {
                strip_same(sub, tpl, &key, carried);
                sub.is_empty()
            }
            (Item::Value(v), Some(Item::Value(o))) => {
                v.clone().decorated("", "").to_string() == o.clone().decorated("", "").to_string()
            }
            (other, Some(o)) => other.to_string().trim() == o.to_string().trim(),
            (_, None) => false,
        };
        if drop {
            t.remove(&k);
        }
    }
}

/// Every leaf of a TOML document as `dotted.key → value`, arrays of tables
/// as `key[i]`.
fn flatten(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, item: &Item, out: &mut BTreeMap<String, String>) {
        let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match item {
            Item::Table(t) => t.iter().for_each(|(k, v)| walk(&join(k), v, out)),
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    t.iter().for_each(|(k, v)| walk(&format!("{prefix}[{i}].{k}"), v, out));
                }
            }
            Item::Value(toml_edit::Value::InlineTable(t)) => {
                for (k, v) in t.iter() {
                    walk(&join(k), &Item::Value(v.clone()), out);
                }
            }
            Item::Value(v) => {
                let shown = if is_secret_key(prefix) {
                    format!("\"{MASK}\"")
                } else {
                    crate::model::secret::mask_urls(&v.clone().decorated("", "").to_string())
                };
                out.insert(prefix.to_string(), shown);
            }
            Item::None => {}
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(doc) = text.parse::<DocumentMut>() {
        walk("", doc.as_item(), &mut out);
    }
    out
}

/// Keys added, changed (old → new) and removed from `old` to `new`, secret
/// values masked: the dry-run's semantic summary.
pub fn semantic_diff(old: &str, new: &str) -> Vec<String> {
    let (a, b) = (flatten(old), flatten(new));
    let mut out = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => out.push(format!("+ {k} = {v}")),
            Some(o) if o != v => out.push(format!("~ {k}: {o} -> {v}")),
            Some(o) if o == v && o.contains(MASK) && raw(old, k) != raw(new, k) => {
                out.push(format!("~ {k}: {MASK} -> {MASK} (changed)"))
            }
            _ => {}
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        out.push(format!("- {k}"));
    }
    out
}

/// The unmasked value of one key, only to tell whether a secret changed.
fn raw(text: &str, key: &str) -> Option<String> {
    let doc: DocumentMut = text.parse().ok()?;
    get(doc.as_item(), key).and_then(|i| i.as_value().map(|v| v.clone().decorated("", "").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPL: &str = "# gateway template\n[server]\nhostname = \"gw.wso2.com\"  # the node\nserver_role = \"gateway-worker\"\n\n# the admin\n[super_admin]\nusername = \"admin\"\npassword = \"admin\"\n\n[apim.key_manager]\nservice_url = \"https://km.wso2.com:9443/services/\"\n\n[[apim.throttling.url_group]]\ntraffic_manager_urls = [\"tcp://tm1.local:9611\"]\n";
    const HOME: &str = "[server]\nhostname = \"apim.example.com\"\n\n[super_admin]\nusername = \"ops\"\npassword = \"s3cret\"\ncreate_admin_account = true\n\n[database.shared_db]\ntype = \"mysql\"\nurl = \"jdbc:mysql://db/shared\"\npassword = \"dbpw\"\n";

    fn facts() -> VersionFacts {
        crate::model::profile::Catalog::embedded().unwrap().facts("wso2am", "4.2.0")
    }

    fn edits() -> ConfigEdits {
        ConfigEdits::default()
    }

    #[test]
    fn carries_tables_and_keeps_comments() {
        let e = ConfigEdits { carry: vec!["super_admin".into(), "database.shared_db".into()], ..edits() };
        let out = apply(TPL, HOME, "gateway-worker", &e, &facts()).unwrap().text;
        assert!(
            out.contains("# gateway template") && out.contains("# the admin") && out.contains("# the node"),
            "{out}"
        );
        assert!(out.contains("username = \"ops\"") && out.contains("create_admin_account = true"));
        assert!(out.contains("server_role = \"gateway-worker\""));
        assert!(out.contains("url = \"jdbc:mysql://db/shared\""));
        let sa = out.find("[super_admin]").unwrap();
        assert!(sa < out.find("[apim.key_manager]").unwrap(), "a carried table keeps the template's place:\n{out}");
    }

    #[test]
    fn sets_and_overlays() {
        let profiles = ["gateway-worker", "traffic-manager"];
        let e = ConfigEdits {
            sets: vec![
                ConfigEdits::parse_set(
                    "gateway-worker:apim.key_manager.service_url=\"https://cp:9443/services/\"",
                    &profiles,
                )
                .unwrap(),
                ConfigEdits::parse_set("traffic-manager:server.hostname=\"tm\"", &profiles).unwrap(),
                ConfigEdits::parse_set("server.offset=1", &profiles).unwrap(),
            ],
            overlays: vec![Overlay {
                profile: None,
                path: "o.toml".into(),
                text: "[[apim.throttling.url_group]]\ntraffic_manager_urls = [\"tcp://tm.prod:9611\"]\n".into(),
            }],
            ..edits()
        };
        let out = apply(TPL, HOME, "gateway-worker", &e, &facts()).unwrap().text;
        assert!(out.contains("service_url = \"https://cp:9443/services/\""), "{out}");
        assert!(out.contains("hostname = \"gw.wso2.com\"  # the node"), "{out}");
        assert!(out.contains("offset = 1"));
        assert!(out.contains("tcp://tm.prod:9611") && !out.contains("tm1.local"));
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        let p = ["gateway-worker"];
        let err = ConfigEdits::parse_set("server.hostname=gw1", &p).unwrap_err().to_string();
        assert!(err.contains("not TOML"), "{err}");
        let err = ConfigEdits::parse_set("super_admin.password=oops", &p).unwrap_err().to_string();
        assert!(!err.contains("oops"), "a secret value appeared in {err}");
        assert!(ConfigEdits::parse_set("nope:server.hostname=\"x\"", &p).is_err());
        let e = ConfigEdits { carry: vec!["keystore.tls".into()], ..edits() };
        let err = apply(TPL, HOME, "gateway-worker", &e, &facts()).unwrap_err().to_string();
        assert!(err.contains("keystore.tls"), "{err}");
    }

    #[test]
    fn typos_are_reported() {
        let p = ["gateway-worker"];
        let e = ConfigEdits { sets: vec![ConfigEdits::parse_set("super_admn.username=\"x\"", &p).unwrap()], ..edits() };
        let w = apply(TPL, HOME, "gateway-worker", &e, &facts()).unwrap().warnings;
        assert!(w.iter().any(|w| w.contains("did you mean `super_admin`")), "{w:?}");
    }

    #[test]
    fn semantic_diff_masks_secrets() {
        let d = semantic_diff(HOME, TPL);
        assert!(d.iter().any(|l| l.starts_with("~ server.hostname")), "{d:?}");
        assert!(d.iter().any(|l| l == "+ server.server_role = \"gateway-worker\""), "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("- database.shared_db.url")));
        let all = d.join("\n");
        assert!(!all.contains("s3cret") && !all.contains("dbpw"), "{all}");
        assert!(all.contains("super_admin.password: ******** -> ******** (changed)"), "{all}");
    }

    /// The real 4.2.0 templates, when the shared test data is there.
    #[test]
    fn real_templates_take_carried_keys_and_overlays() {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/apim-4.2.0-conf/repository");
        let Ok(home) = std::fs::read_to_string(conf.join("conf/deployment.toml")) else { return };
        let p = ["control-plane", "gateway-worker", "traffic-manager", "api-key-manager-deprecated"];
        for name in p {
            let tpl =
                std::fs::read_to_string(conf.join(format!("resources/conf/deployment-templates/{name}.toml"))).unwrap();
            let e = ConfigEdits {
                carry: vec!["super_admin".into(), "keystore.tls".into(), "database.shared_db".into()],
                sets: vec![ConfigEdits::parse_set(
                    "apim.key_manager.service_url=\"https://cp.example.com:9443/services/\"",
                    &p,
                )
                .unwrap()],
                overlays: vec![Overlay {
                    profile: None,
                    path: "o.toml".into(),
                    text: "[server]\nhostname = \"node.example.com\"\n".into(),
                }],
                ..edits()
            };
            let out = apply(&tpl, &home, name, &e, &facts()).unwrap().text;
            out.parse::<DocumentMut>().unwrap();
            for line in tpl.lines().filter(|l| l.trim_start().starts_with('#')) {
                assert!(out.contains(line), "{name}: comment {line:?} lost");
            }
            let role = |t: &str| flatten(t).get("server.server_role").cloned();
            assert_eq!(role(&out), role(&tpl), "{name}");
            assert!(out.contains("hostname = \"node.example.com\""));
        }
    }
}
