; generator: profile_rect (routing.programs)
; param breakthrough_mm = 0.2
; param clearance_z_mm = 15.0
; param climb = True
; param corner_radius_mm = 15.0
; param depth_per_pass_mm = 2.5
; param feed_mm_min = 1000.0
; param height_mm = 30.0
; param lead_in = 'arc'
; param lead_in_mm = 5.0
; param margin_mm = 15.0
; param plunge_feed_mm_min = 300.0
; param safe_z_mm = 5.0
; param spindle_rpm = 18000
; param thickness_mm = 12.0
; param tool_diameter_mm = 6.0
; param width_mm = 80.0
; 5 pass(es) of 2.4400 mm to Z-12.2
G21
G90
G17
G94
G0 Z15
M3 S18000
G4 P3
G0 X60 Y7
G0 Z5
G1 Z0 F300
; pass 1 of 5
G3 X55 Y12 Z-2.44 I-5 J0 F300
G1 X30 Y12 F1000
G2 X12 Y30 I0 J18
G2 X30 Y48 I18 J0
G1 X80 Y48
G2 X98 Y30 I0 J-18
G2 X80 Y12 I-18 J0
G1 X55 Y12
G2 X60 Y7 I0 J-5
; pass 2 of 5
G3 X55 Y12 Z-4.88 I-5 J0 F300
G1 X30 Y12 F1000
G2 X12 Y30 I0 J18
G2 X30 Y48 I18 J0
G1 X80 Y48
G2 X98 Y30 I0 J-18
G2 X80 Y12 I-18 J0
G1 X55 Y12
G2 X60 Y7 I0 J-5
; pass 3 of 5
G3 X55 Y12 Z-7.32 I-5 J0 F300
G1 X30 Y12 F1000
G2 X12 Y30 I0 J18
G2 X30 Y48 I18 J0
G1 X80 Y48
G2 X98 Y30 I0 J-18
G2 X80 Y12 I-18 J0
G1 X55 Y12
G2 X60 Y7 I0 J-5
; pass 4 of 5
G3 X55 Y12 Z-9.76 I-5 J0 F300
G1 X30 Y12 F1000
G2 X12 Y30 I0 J18
G2 X30 Y48 I18 J0
G1 X80 Y48
G2 X98 Y30 I0 J-18
G2 X80 Y12 I-18 J0
G1 X55 Y12
G2 X60 Y7 I0 J-5
; pass 5 of 5
G3 X55 Y12 Z-12.2 I-5 J0 F300
G1 X30 Y12 F1000
G2 X12 Y30 I0 J18
G2 X30 Y48 I18 J0
G1 X80 Y48
G2 X98 Y30 I0 J-18
G2 X80 Y12 I-18 J0
G1 X55 Y12
G2 X60 Y7 I0 J-5
G0 Z15
M5
M2
