"""What runs several stages in a row: reproduce (runs, then the report), study, demo, doctor,
the GPU check, and the synthetic worlds they train on."""
