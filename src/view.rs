//! `record_view!`: a record's wire view declared from one field list, built from the record.

/// Declares a view struct and `From<&Record>` for it, from one list of fields. A field written
/// `name: Type,` is the record's field of that name, cloned; one written
/// `name: Type = |record| expression,` is computed from the record. Fields left out of the list
/// (`seq`, secrets) are not in the view. Attributes on the struct and its fields (derives, serde,
/// `#[schema(...)]`, doc comments) are kept, and the fields stay in the order written: it is the
/// order of the JSON keys.
macro_rules! record_view {
    (
        $(#[$attr:meta])*
        pub struct $view:ident from $record:ident {
            $(
                $(#[$field_attr:meta])*
                $field:ident: $ty:ty $(= |$from:ident| $computed:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        pub struct $view {
            $($(#[$field_attr])* pub $field: $ty,)*
        }

        impl From<&$record> for $view {
            fn from(record: &$record) -> $view {
                $view {
                    $($field: $crate::view::record_view!(
                        @value record, $field $(, |$from| $computed)?
                    ),)*
                }
            }
        }
    };
    (@value $record:ident, $field:ident) => {
        ::std::clone::Clone::clone(&$record.$field)
    };
    (@value $record:ident, $field:ident, |$from:ident| $computed:expr) => {{
        let $from = $record;
        $computed
    }};
}

pub(crate) use record_view;
