//! Facts of one product version that are not a profile: the tables its
//! `deployment.toml` knows, the settings `--carry-common` carries, its kernel
//! (to cross-check a home's identity), whether it is refused and why, and what
//! its documentation says about updates. They live beside the profile
//! definitions as `profiles/<dir>/_version.toml`, and the packs WSO2 ships in
//! `profiles/products.toml`, so that supporting a new version is a data change.

use serde::Deserialize;

use crate::outcome::Refusal;

/// The file name of a version's facts inside `profiles/<version>/`.
pub const FACTS_FILE: &str = "_version.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VersionFacts {
    pub product: String,
    pub version: String,
    #[serde(rename = "deployment-toml", default)]
    pub deployment_toml: DeploymentToml,
    /// Version of `org.wso2.carbon.core_<kernel>.jar` in a home of this version.
    #[serde(default)]
    pub kernel: Option<String>,
    /// The optimization consumes its template variants, so it cannot be
    /// applied again after an update: split updates each copy first.
    #[serde(rename = "update-first", default)]
    pub update_first: bool,
    /// Printed with each update of a copy, from the version's documentation.
    #[serde(rename = "update-advice", default)]
    pub update_advice: Option<String>,
    /// How a copy of this version is started, as the product documents it
    /// (`{profile}` stands for the profile's name); a profile may say otherwise.
    #[serde(default)]
    pub start: Option<String>,
    /// Set when the version is refused: why, and what to do instead.
    #[serde(default)]
    pub refuse: Option<String>,
    /// Set when a home of this pack is refused on its own (`split` of it
    /// alone, `optimize`): it is one node of a pattern with other packs (the
    /// all-in-one pack of 4.5.0+ beside Universal Gateways). `hint` says what
    /// to do instead.
    #[serde(rename = "refuse-alone", default)]
    pub refuse_alone: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
    /// Entries a home of this pack and version has, and never has: a
    /// cross-check of what its version files say.
    #[serde(default)]
    pub layout: Layout,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Paths (relative to the home) every home of the version has.
    #[serde(default)]
    pub present: Vec<String>,
    /// Paths no home of the version has.
    #[serde(default)]
    pub absent: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeploymentToml {
    /// Tables or dotted keys `--carry-common` carries, where the home sets them.
    #[serde(default)]
    pub carry_common: Vec<String>,
    /// Top-level tables of this version; keys under others get a typo warning.
    /// Empty: no warnings.
    #[serde(default)]
    pub known_tables: Vec<String>,
}

impl VersionFacts {
    /// Parses one `_version.toml`; invalid TOML names file, line and column.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<VersionFacts> {
        parse_toml(text, origin, "version facts")
    }
}

/// A pack WSO2 ships (`profiles/products.toml`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// As `updates/product.txt` says it before the version: `wso2am-acp`.
    pub id: String,
    /// As `bin/version.txt` and `carbon.xml` say it: `WSO2 API Control Plane`.
    pub name: String,
    /// How messages name it: `API Control Plane`.
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Products {
    pub product: Vec<Product>,
}

const PRODUCTS: &str = include_str!("../../profiles/products.toml");

impl Products {
    pub fn embedded() -> Products {
        parse_toml(PRODUCTS, "<embedded>/profiles/products.toml", "product list")
            .expect("the embedded products.toml is valid (unit-tested)")
    }

    /// The pack and version of an `updates/product.txt` line: the longest
    /// known id followed by `-` and a digit.
    pub fn parse_product_line<'a>(&self, line: &'a str) -> Option<(&Product, &'a str)> {
        self.product
            .iter()
            .filter_map(|p| {
                let rest = line.strip_prefix(p.id.as_str())?.strip_prefix('-')?;
                rest.starts_with(|c: char| c.is_ascii_digit()).then_some((p, rest))
            })
            .max_by_key(|(p, _)| p.id.len())
    }

    pub fn by_name(&self, name: &str) -> Option<&Product> {
        self.product.iter().find(|p| p.name.eq_ignore_ascii_case(name.trim()))
    }

    pub fn by_id(&self, id: &str) -> Option<&Product> {
        self.product.iter().find(|p| p.id == id)
    }
}

/// How messages name a pack: `API-M`, `API Control Plane`, ... (the id when unknown).
pub fn label(id: &str) -> String {
    Products::embedded().by_id(id).map_or_else(|| id.to_string(), |p| p.label.clone())
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, origin: &str, what: &str) -> anyhow::Result<T> {
    toml_edit::de::from_str(text).map_err(|e| {
        let at = crate::model::text::at(text, e.span());
        let msg = e.message().lines().next().unwrap_or("invalid").to_string();
        Refusal::new(
            format!("{what} {origin}{at} is not valid: {msg}"),
            "fix the file (docs/reference.md, \"Version facts\", lists the fields), or drop --profile-dir",
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_name_every_pack() {
        let p = Products::embedded();
        let (prod, v) = p.parse_product_line("wso2am-acp-4.6.0").unwrap();
        assert_eq!((prod.id.as_str(), v), ("wso2am-acp", "4.6.0"));
        let (prod, v) = p.parse_product_line("wso2am-4.2.0").unwrap();
        assert_eq!((prod.id.as_str(), v), ("wso2am", "4.2.0"));
        assert!(p.parse_product_line("wso2is-7.0.0").is_none());
        assert_eq!(p.by_name("WSO2 Universal Gateway").unwrap().id, "wso2am-universal-gw");
        assert_eq!(label("wso2am-tm"), "Traffic Manager");
    }
}
