//! Turning record keys and values into bytes: the [`Serializer`] trait and the built-ins.
//!
//! The built-ins write the same bytes as Java's `ByteArraySerializer`, `StringSerializer`
//! (UTF-8), `IntegerSerializer` and `LongSerializer` (big-endian), so consumers written in
//! any language read them back alike. `JsonSerializer` (crate feature `json`) writes
//! `serde_json`'s output.
//!
//! Serializers run on the thread that calls `send`, before the record is buffered; the
//! producer never hands them to its own threads except through `Send + Sync`.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::Error;

/// Turns a `T` into the bytes of a record key or value.
///
/// A failure is reported as [`Error::Serialization`] and fails that one record's send; the
/// producer carries on. `topic` is the record's topic, for serializers whose format depends
/// on it (a schema registry subject, say).
///
/// ```
/// use kafka_producer::{IntegerSerializer, Serializer, StringSerializer};
///
/// assert_eq!(StringSerializer.serialize("orders", "héllo")?, "héllo".as_bytes());
/// assert_eq!(IntegerSerializer.serialize("orders", &1)?, [0, 0, 0, 1]);
/// # Ok::<(), kafka_producer::Error>(())
/// ```
///
/// A custom serializer implements the trait for its own type:
///
/// ```
/// use kafka_producer::{Error, Serializer};
///
/// /// An order id, written as fixed-width ASCII decimal.
/// struct OrderId(u64);
///
/// #[derive(Debug, Default)]
/// struct OrderIdSerializer;
///
/// impl Serializer<OrderId> for OrderIdSerializer {
///     fn serialize(&self, _topic: &str, id: &OrderId) -> Result<Vec<u8>, Error> {
///         if id.0 == 0 {
///             return Err(Error::Serialization("order id 0 is reserved".to_string()));
///         }
///         Ok(format!("{:020}", id.0).into_bytes())
///     }
/// }
///
/// assert_eq!(OrderIdSerializer.serialize("orders", &OrderId(42))?.len(), 20);
/// assert!(matches!(
///     OrderIdSerializer.serialize("orders", &OrderId(0)),
///     Err(Error::Serialization(_))
/// ));
/// # Ok::<(), kafka_producer::Error>(())
/// ```
pub trait Serializer<T: ?Sized>: Send + Sync + 'static {
    /// The bytes of `data`, a key or value of a record for `topic`, or an
    /// [`Error::Serialization`] saying why it cannot be written.
    fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, Error>;

    /// The bytes of `data`, borrowed from it when they already exist. The producer calls
    /// this one; the default copies [`Serializer::serialize`]'s result. Override it when
    /// `data` holds its bytes (the built-in bytes and string serializers do), so a send
    /// copies the bytes once, straight into the batch.
    fn serialize_borrowed<'a>(&self, topic: &str, data: &'a T) -> Result<Cow<'a, [u8]>, Error> {
        self.serialize(topic, data).map(Cow::Owned)
    }

    /// The Java serializer classes (fully qualified) that write the same bytes, for the
    /// `key.serializer` and `value.serializer` of a Java properties file (see
    /// [`ProducerConfig::from_properties_file`](crate::ProducerConfig::from_properties_file)):
    /// building a producer whose serializer lists classes fails when the file names
    /// another one. Empty (the default) when no Java class is known to match: the named
    /// class is then ignored, with a warning.
    fn java_classes(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A shared serializer serializes like the one it shares.
impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Arc<S> {
    fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, Error> {
        (**self).serialize(topic, data)
    }

    fn serialize_borrowed<'a>(&self, topic: &str, data: &'a T) -> Result<Cow<'a, [u8]>, Error> {
        (**self).serialize_borrowed(topic, data)
    }
    fn java_classes(&self) -> &'static [&'static str] {
        (**self).java_classes()
    }
}

/// A boxed serializer (for example `Box<dyn Serializer<T>>`) serializes like its content.
impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Box<S> {
    fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, Error> {
        (**self).serialize(topic, data)
    }

    fn serialize_borrowed<'a>(&self, topic: &str, data: &'a T) -> Result<Cow<'a, [u8]>, Error> {
        (**self).serialize_borrowed(topic, data)
    }
    fn java_classes(&self) -> &'static [&'static str] {
        (**self).java_classes()
    }
}

/// Java's serializers of bytes as they are: `byte[]`, `Bytes` and `ByteBuffer`.
const BYTES_CLASSES: &[&str] = &[
    "org.apache.kafka.common.serialization.ByteArraySerializer",
    "org.apache.kafka.common.serialization.BytesSerializer",
    "org.apache.kafka.common.serialization.ByteBufferSerializer",
];

/// Bytes as they are, like Java's `ByteArraySerializer`: `Vec<u8>`, `[u8]` and
/// [`bytes::Bytes`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl Serializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, _topic: &str, data: &Vec<u8>) -> Result<Vec<u8>, Error> {
        Ok(data.clone())
    }

    fn serialize_borrowed<'a>(
        &self,
        _topic: &str,
        data: &'a Vec<u8>,
    ) -> Result<Cow<'a, [u8]>, Error> {
        Ok(Cow::Borrowed(data))
    }

    fn java_classes(&self) -> &'static [&'static str] {
        BYTES_CLASSES
    }
}

impl Serializer<[u8]> for BytesSerializer {
    fn serialize(&self, _topic: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(data.to_vec())
    }

    fn serialize_borrowed<'a>(&self, _topic: &str, data: &'a [u8]) -> Result<Cow<'a, [u8]>, Error> {
        Ok(Cow::Borrowed(data))
    }

    fn java_classes(&self) -> &'static [&'static str] {
        BYTES_CLASSES
    }
}

impl Serializer<bytes::Bytes> for BytesSerializer {
    fn serialize(&self, _topic: &str, data: &bytes::Bytes) -> Result<Vec<u8>, Error> {
        Ok(data.to_vec())
    }

    fn serialize_borrowed<'a>(
        &self,
        _topic: &str,
        data: &'a bytes::Bytes,
    ) -> Result<Cow<'a, [u8]>, Error> {
        Ok(Cow::Borrowed(data))
    }

    fn java_classes(&self) -> &'static [&'static str] {
        BYTES_CLASSES
    }
}

/// Text as UTF-8, like Java's `StringSerializer` with its default encoding: `String` and
/// `str`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer<String> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &String) -> Result<Vec<u8>, Error> {
        Ok(data.as_bytes().to_vec())
    }

    fn serialize_borrowed<'a>(
        &self,
        _topic: &str,
        data: &'a String,
    ) -> Result<Cow<'a, [u8]>, Error> {
        Ok(Cow::Borrowed(data.as_bytes()))
    }

    fn java_classes(&self) -> &'static [&'static str] {
        &["org.apache.kafka.common.serialization.StringSerializer"]
    }
}

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &str) -> Result<Vec<u8>, Error> {
        Ok(data.as_bytes().to_vec())
    }

    fn serialize_borrowed<'a>(&self, _topic: &str, data: &'a str) -> Result<Cow<'a, [u8]>, Error> {
        Ok(Cow::Borrowed(data.as_bytes()))
    }

    fn java_classes(&self) -> &'static [&'static str] {
        &["org.apache.kafka.common.serialization.StringSerializer"]
    }
}

/// An `i32` as 4 bytes, big-endian, like Java's `IntegerSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntegerSerializer;

impl Serializer<i32> for IntegerSerializer {
    fn serialize(&self, _topic: &str, data: &i32) -> Result<Vec<u8>, Error> {
        Ok(data.to_be_bytes().to_vec())
    }

    fn java_classes(&self) -> &'static [&'static str] {
        &["org.apache.kafka.common.serialization.IntegerSerializer"]
    }
}

/// An `i64` as 8 bytes, big-endian, like Java's `LongSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LongSerializer;

impl Serializer<i64> for LongSerializer {
    fn serialize(&self, _topic: &str, data: &i64) -> Result<Vec<u8>, Error> {
        Ok(data.to_be_bytes().to_vec())
    }

    fn java_classes(&self) -> &'static [&'static str] {
        &["org.apache.kafka.common.serialization.LongSerializer"]
    }
}

#[cfg(feature = "json")]
pub use json::JsonSerializer;

#[cfg(feature = "json")]
mod json {
    use std::fmt;
    use std::marker::PhantomData;

    use super::Serializer;
    use crate::error::Error;

    /// Any `T: serde::Serialize` as compact JSON, through `serde_json` (crate feature
    /// `json`). A value `serde_json` cannot write (a map with non-string keys, say) is an
    /// [`Error::Serialization`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use kafka_producer::{JsonSerializer, Serializer};
    ///
    /// let order = BTreeMap::from([("id", 7)]);
    /// let bytes = JsonSerializer::new().serialize("orders", &order)?;
    /// assert_eq!(bytes, br#"{"id":7}"#);
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    // `fn(&T)`: the serializer holds no `T`, so it is `Send + Sync` whatever `T` is.
    pub struct JsonSerializer<T: ?Sized>(PhantomData<fn(&T)>);

    impl<T: ?Sized> JsonSerializer<T> {
        /// A JSON serializer for `T`.
        pub const fn new() -> Self {
            JsonSerializer(PhantomData)
        }
    }

    // Written out rather than derived: derives would demand `T: Debug + Clone + ...`.
    impl<T: ?Sized> fmt::Debug for JsonSerializer<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JsonSerializer")
        }
    }

    impl<T: ?Sized> Clone for JsonSerializer<T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T: ?Sized> Copy for JsonSerializer<T> {}

    impl<T: ?Sized> Default for JsonSerializer<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T: serde::Serialize + ?Sized + 'static> Serializer<T> for JsonSerializer<T> {
        fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, Error> {
            serde_json::to_vec(data).map_err(|e| {
                Error::Serialization(format!(
                    "cannot write a value for topic {topic:?} as JSON: {e}"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_like_java() {
        let int = |n: i32| IntegerSerializer.serialize("t", &n).unwrap();
        assert_eq!(int(1), [0x00, 0x00, 0x00, 0x01]);
        assert_eq!(int(-1), [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(int(i32::MIN), [0x80, 0x00, 0x00, 0x00]);
        assert_eq!(int(0x0102_0304), [0x01, 0x02, 0x03, 0x04]);
    }

    #[test]
    fn longs_are_big_endian_like_java() {
        let long = |n: i64| LongSerializer.serialize("t", &n).unwrap();
        assert_eq!(long(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(long(-1), [0xff; 8]);
        assert_eq!(
            long(i64::MAX),
            [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(long(0x0102_0304_0506_0708), [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn strings_are_utf8() {
        let expected = [0x63, 0x61, 0x66, 0xc3, 0xa9, 0x20, 0xe2, 0x98, 0x95];
        assert_eq!(
            StringSerializer.serialize("t", "café ☕").unwrap(),
            expected
        );
        let owned = "café ☕".to_string();
        assert_eq!(StringSerializer.serialize("t", &owned).unwrap(), expected);
        assert_eq!(StringSerializer.serialize("t", "").unwrap(), b"");
    }

    #[test]
    fn bytes_pass_through_unchanged() {
        let data = vec![0u8, 1, 0xff];
        assert_eq!(BytesSerializer.serialize("t", &data).unwrap(), data);
        assert_eq!(BytesSerializer.serialize("t", &data[..]).unwrap(), data);
        let shared = bytes::Bytes::from(data.clone());
        assert_eq!(BytesSerializer.serialize("t", &shared).unwrap(), data);
    }

    /// Refuses every value, naming the topic.
    struct Refuses;

    impl Serializer<u8> for Refuses {
        fn serialize(&self, topic: &str, _data: &u8) -> Result<Vec<u8>, Error> {
            Err(Error::Serialization(format!("no bytes for {topic}")))
        }
    }

    #[test]
    fn failing_custom_serializer_returns_a_serialization_error() {
        let boxed: Box<dyn Serializer<u8>> = Box::new(Refuses);
        let shared: Arc<dyn Serializer<u8>> = Arc::new(Refuses);
        for result in [
            boxed.serialize("orders", &1),
            shared.serialize("orders", &1),
        ] {
            assert!(
                matches!(&result, Err(Error::Serialization(m)) if m == "no bytes for orders"),
                "{result:?}"
            );
        }
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_values_are_written_by_serde_json() {
        use std::collections::BTreeMap;
        let value = BTreeMap::from([("b", vec![1, 2]), ("a", vec![])]);
        let bytes = JsonSerializer::new().serialize("t", &value).unwrap();
        assert_eq!(bytes, br#"{"a":[],"b":[1,2]}"#);
        let text = JsonSerializer::<str>::new().serialize("t", "x\"y").unwrap();
        assert_eq!(text, br#""x\"y""#);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_error_becomes_a_serialization_error() {
        use std::collections::BTreeMap;
        let value = BTreeMap::from([(vec![1u8], 1)]);
        let result = JsonSerializer::new().serialize("orders", &value);
        assert!(
            matches!(&result, Err(Error::Serialization(m)) if m.contains("\"orders\"")),
            "{result:?}"
        );
    }
}
