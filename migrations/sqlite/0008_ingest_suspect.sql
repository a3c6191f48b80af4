-- An event the uploading controller may not claim (another controller's door,
-- a person or card central does not know, a card of someone else, a time
-- ahead of central's clock) is stored with the reason here. It counts for no
-- occupancy and no passage shared with other controllers, and is left out of
-- door, zone and person searches; its alarm names it (web/src/store/trust.rs).
ALTER TABLE events ADD COLUMN suspect TEXT;
