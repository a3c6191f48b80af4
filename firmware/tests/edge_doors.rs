//! Doors at the edge of the site open onto the public street, which is no zone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tobira_firmware::*;

#[test]
fn a_door_onto_the_street_needs_no_outside_zone() {
    let mut data = city_hall_data();
    let entrance = data
        .doors
        .iter_mut()
        .find(|d| d.id == MAIN_ENTRANCE)
        .unwrap();
    entrance.outside = ZoneId::PUBLIC;
    let mut w = World::new(Snapshot::new(data).unwrap(), workday());
    let before = w.enter(MAIN_ENTRANCE, SATO);
    assert!(before.is_granted(), "{:?}", before.reason);
    // Nobody is ever recorded "inside" the street.
    assert!(!w.mem.is_inside(ZoneId::PUBLIC, SATO));
    let out = w.leave(MAIN_ENTRANCE, SATO);
    assert!(out.is_granted(), "{:?}", out.reason);
}

#[test]
fn only_the_outside_may_be_the_street() {
    let mut data = city_hall_data();
    data.doors[0].inside = ZoneId::PUBLIC;
    assert!(matches!(
        Snapshot::new(data),
        Err(SnapshotError::Dangling { .. })
    ));
}
