//! The bus from the host: publishing on any topic.
//!
//! The rules:
//! - The host owns every topic, the reserved prefixes (`safety.`, `actuator.`, `param.`,
//!   `rebeam.`) included: Python may publish there only where the builder allowed it
//!   ([`crate::Builder::allow_publish`]), the host always may.
//! - A publication is a neutral value: Python subscribers (`rebeam.on(pattern, fn)`) receive it
//!   as dicts, lists and NumPy arrays.

use serde::Serialize;

use rebeam_proto::value::encode_value;
use rebeam_proto::{Request, Response};

use crate::actors::CAST_ACK_TIMEOUT;
use crate::value::to_value;
use crate::{Error, Runtime};

impl Runtime {
    /// Publishes `value` on `topic` to every matching subscription.
    pub fn publish<T: Serialize + ?Sized>(&self, topic: &str, value: &T) -> Result<(), Error> {
        let payload = encode_value(&to_value(value)?);
        match self.client.request(Request::Publish { topic: topic.to_owned(), payload }, Some(CAST_ACK_TIMEOUT))? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(Error::Remote {
                target: format!("topic {topic:?}"),
                subject: "publish".into(),
                info: Box::new(info),
            }),
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }
}
