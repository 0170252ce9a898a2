-- The end of a segment update, after its VALUES list.
) as v where customers.id = v.column1 and customers.version = v.column3 - 1 returning
    customers.id
