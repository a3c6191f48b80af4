//! Device layer: drivers and simulators for card readers, fingerprint modules and GPIO.
