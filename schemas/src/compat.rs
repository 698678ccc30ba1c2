//! Can a reader schema read what a writer schema wrote? The Avro specification's
//! schema-resolution rules, checked statically with the path and reason of the first
//! incompatibility.
//!
//! apache-avro's own `SchemaCompatibility` rejects a writer enum symbol the reader does
//! not know even when the reader enum has a default, which the specification (and
//! apache-avro's decoder) accept; that default is how old readers read new event types
//! as `UNKNOWN`. This checker follows the specification, and the tests prove each rule
//! against the real decoder.

use std::collections::HashMap;

use apache_avro::schema::{Name, ResolvedSchema, UuidSchema};
use apache_avro::Schema;

/// Why a reader cannot read a writer's records: where, and what breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: {reason}")]
pub struct Incompatibility {
    /// Dotted path from the top record to the first incompatible part.
    pub path: String,
    /// What breaks there.
    pub reason: String,
}

/// Checks that every datum written with `writer` can be read with `reader`.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), Incompatibility> {
    let writer_names = named_schemas(writer)?;
    let reader_names = named_schemas(reader)?;
    let checker = Checker {
        writer_names: &writer_names,
        reader_names: &reader_names,
    };
    checker.check(writer, reader, &top_name(writer))
}

/// Checks both directions: old readers read new records and new readers read old ones.
pub fn mutual_read(a: &Schema, b: &Schema) -> Result<(), Incompatibility> {
    can_read(a, b)?;
    can_read(b, a)
}

fn named_schemas(schema: &Schema) -> Result<HashMap<Name, Schema>, Incompatibility> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| Incompatibility {
        path: top_name(schema),
        reason: format!("schema does not resolve: {e}"),
    })?;
    Ok(resolved
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), (*s).clone()))
        .collect())
}

fn top_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.name().to_owned(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)),
    }
}

struct Checker<'a> {
    writer_names: &'a HashMap<Name, Schema>,
    reader_names: &'a HashMap<Name, Schema>,
}

impl Checker<'_> {
    fn check(&self, writer: &Schema, reader: &Schema, path: &str) -> Result<(), Incompatibility> {
        let fail = |reason: String| {
            Err(Incompatibility {
                path: path.to_owned(),
                reason,
            })
        };
        let writer = self.deref(writer, self.writer_names);
        let reader = self.deref(reader, self.reader_names);
        match (writer, reader) {
            (Schema::Union(w), _) => {
                for (i, branch) in w.variants().iter().enumerate() {
                    self.check(branch, reader, &format!("{path}[union branch {i}]"))?;
                }
                Ok(())
            }
            (_, Schema::Union(r)) => {
                if r.variants()
                    .iter()
                    .any(|branch| self.check(writer, branch, path).is_ok())
                {
                    Ok(())
                } else {
                    fail(format!(
                        "the reader's union has no branch that reads the writer's {}",
                        kind(writer)
                    ))
                }
            }
            (Schema::Record(w), Schema::Record(r)) => {
                if w.name.name() != r.name.name() {
                    return fail(format!(
                        "record {} is read as record {}",
                        w.name.name(),
                        r.name.name()
                    ));
                }
                for field in &r.fields {
                    let field_path = format!("{path}.{}", field.name);
                    let in_writer = w
                        .fields
                        .iter()
                        .find(|f| f.name == field.name || field.aliases.contains(&f.name));
                    match in_writer {
                        Some(wf) => self.check(&wf.schema, &field.schema, &field_path)?,
                        None if field.default.is_some() => {}
                        None => {
                            return Err(Incompatibility {
                                path: field_path,
                                reason: "the reader has this field, the writer does not, and the reader gives no default".into(),
                            })
                        }
                    }
                }
                Ok(())
            }
            (Schema::Enum(w), Schema::Enum(r)) => {
                if w.name.name() != r.name.name() {
                    return fail(format!(
                        "enum {} is read as enum {}",
                        w.name.name(),
                        r.name.name()
                    ));
                }
                let unknown: Vec<&String> = w
                    .symbols
                    .iter()
                    .filter(|s| !r.symbols.contains(s))
                    .collect();
                if unknown.is_empty() || r.default.is_some() {
                    Ok(())
                } else {
                    fail(format!(
                        "writer symbols {unknown:?} are not in the reader's enum {}, which has no default",
                        r.name.name()
                    ))
                }
            }
            (Schema::Array(w), Schema::Array(r)) => {
                self.check(&w.items, &r.items, &format!("{path}[]"))
            }
            (Schema::Map(w), Schema::Map(r)) => {
                self.check(&w.types, &r.types, &format!("{path}{{}}"))
            }
            (Schema::Fixed(w), Schema::Fixed(r)) => {
                if w.name.name() == r.name.name() && w.size == r.size {
                    Ok(())
                } else {
                    fail(format!(
                        "fixed {}({}) is read as fixed {}({})",
                        w.name.name(),
                        w.size,
                        r.name.name(),
                        r.size
                    ))
                }
            }
            (w, r) if promotes(primitive(w), primitive(r)) => Ok(()),
            (w, r) => fail(format!("the writer's {} is read as {}", kind(w), kind(r))),
        }
    }

    fn deref<'s>(&'s self, schema: &'s Schema, names: &'s HashMap<Name, Schema>) -> &'s Schema {
        match schema {
            Schema::Ref { name } => names.get(name).unwrap_or(schema),
            other => other,
        }
    }
}

/// The primitive type a (logical) schema is stored as.
fn primitive(schema: &Schema) -> Schema {
    match schema {
        Schema::Date | Schema::TimeMillis => Schema::Int,
        Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Schema::Long,
        Schema::Uuid(UuidSchema::String) => Schema::String,
        Schema::Uuid(UuidSchema::Bytes) => Schema::Bytes,
        Schema::Uuid(UuidSchema::Fixed(fixed)) => Schema::Fixed(fixed.clone()),
        other => other.clone(),
    }
}

/// The specification's promotions, plus identity.
fn promotes(writer: Schema, reader: Schema) -> bool {
    use Schema::*;
    matches!(
        (&writer, &reader),
        (Null, Null)
            | (Boolean, Boolean)
            | (Int, Int | Long | Float | Double)
            | (Long, Long | Float | Double)
            | (Float, Float | Double)
            | (Double, Double)
            | (String, String | Bytes)
            | (Bytes, Bytes | String)
    )
}

fn kind(schema: &Schema) -> String {
    format!("{:?}", apache_avro::schema::SchemaKind::from(schema)).to_lowercase()
}
