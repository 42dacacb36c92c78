-- Every money-bearing resource carries its currency (ISO 4217). A deal's value had
-- none; existing deals and deals created without one are in Australian dollars (the
-- CRM settings name no currency). The service checks the code against ISO 4217; the
-- table checks its shape.
ALTER TABLE crm.deals
    ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'AUD' CHECK (currency ~ '^[A-Z]{3}$');
