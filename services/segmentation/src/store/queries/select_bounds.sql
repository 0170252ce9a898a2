select bounds from rfm_bounds where id = 1
