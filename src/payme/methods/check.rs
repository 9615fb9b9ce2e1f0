//! CheckTransaction: the stored state of one transaction. Times not reached yet are 0.

use super::{existing, report, Effects, Env, MethodResult};
use crate::payme::rpc::Params;

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, _: &Env<'_>, _: &mut Effects) -> MethodResult {
    let tx = existing(conn, p)?;
    Ok(report(&tx))
}
