//! Reading a [`Node`] from a tree's JSON without `#[serde(flatten)]`.
//!
//! Vendored change (see vendor/README.md in standby): `Node` flattens its `NodeType` and its
//! `Metadata`, and serde reads a struct with flattened parts by first copying every key and
//! value into an intermediate `Content` map. For a backup that reads its parent snapshot's
//! trees, that was most of the time spent on each unchanged file. `WireNode` has all of
//! restic's node keys as plain fields, so serde_json reads them in one pass; the result is the
//! same `Node`, and the keys, defaults and errors are those of the derived form, except that a
//! node restic wrote without `mode` reads as mode 0, as restic reads it.

use serde_aux::prelude::deserialize_default_from_null;
use serde_derive::Deserialize;
use serde_with::{
    DefaultOnNull,
    base64::{Base64, Standard},
    formats::Padded,
    serde_as,
};

use jiff::Timestamp;

use super::{ExtendedAttribute, Metadata, Node, NodeType};
use crate::blob::{DataId, tree::TreeId};
use crate::repofile::RusticTime;

#[serde_as]
#[derive(Deserialize)]
pub(super) struct WireNode {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    linktarget: Option<String>,
    #[serde_as(as = "DefaultOnNull<Option<Base64::<Standard,Padded>>>")]
    #[serde(default)]
    linktarget_raw: Option<Vec<u8>>,
    #[serde(default)]
    device: u64,
    #[serde(default)]
    mode: Option<u32>,
    #[serde_as(as = "Option<RusticTime>")]
    #[serde(default)]
    mtime: Option<Timestamp>,
    #[serde_as(as = "Option<RusticTime>")]
    #[serde(default)]
    atime: Option<Timestamp>,
    #[serde_as(as = "Option<RusticTime>")]
    #[serde(default)]
    ctime: Option<Timestamp>,
    #[serde(default)]
    uid: Option<u32>,
    #[serde(default)]
    gid: Option<u32>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    device_id: u64,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    links: u64,
    #[serde(default)]
    extended_attributes: Vec<ExtendedAttribute>,
    #[serde(default, deserialize_with = "deserialize_default_from_null")]
    content: Option<Vec<DataId>>,
    #[serde(default)]
    subtree: Option<TreeId>,
}

impl WireNode {
    pub(super) fn into_node<E: serde::de::Error>(self) -> Result<Node, E> {
        let node_type = match self.kind.as_str() {
            "file" => NodeType::File,
            "dir" => NodeType::Dir,
            "symlink" => NodeType::Symlink {
                linktarget: self.linktarget.ok_or_else(|| E::missing_field("linktarget"))?,
                linktarget_raw: self.linktarget_raw,
            },
            "dev" => NodeType::Dev { device: self.device },
            "chardev" => NodeType::Chardev { device: self.device },
            "fifo" => NodeType::Fifo,
            "socket" => NodeType::Socket,
            other => {
                return Err(E::unknown_variant(
                    other,
                    &["file", "dir", "symlink", "dev", "chardev", "fifo", "socket"],
                ));
            }
        };
        Ok(Node {
            name: self.name,
            node_type,
            meta: Metadata {
                // restic writes `mode` with `omitempty`: a file whose permissions are 000 has
                // none. Its nodes always have `uid` (rustic's on Windows do not), so there a
                // missing mode is 0, as restic restores it.
                mode: self.mode.or_else(|| self.uid.map(|_| 0)),
                mtime: self.mtime,
                atime: self.atime,
                ctime: self.ctime,
                uid: self.uid,
                gid: self.gid,
                user: self.user,
                group: self.group,
                inode: self.inode,
                device_id: self.device_id,
                size: self.size,
                links: self.links,
                extended_attributes: self.extended_attributes,
            },
            content: self.content,
            subtree: self.subtree,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireNode::deserialize(deserializer)?.into_node::<D::Error>()
    }
}
